//! The task that owns a dev server's process: spawns it, waits until it answers, restarts
//! it after a crash (with a growing pause, giving up after [`MAX_FAILURES`] crashes in a
//! row before it answered), and kills its whole tree when told to stop or when the sandbox
//! stops.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use draftsmith_process::kill_tree;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::probe::answers_http;
use super::tail::LineTail;
use super::{DevEndpoint, DevServerState, DevServerStatus};
use crate::error::SandboxError;

/// Crashes in a row, without answering in between, after which it is left crashed (the
/// next request for it starts it again).
const MAX_FAILURES: u32 = 5;
/// Longest a start may take before the process counts as crashed.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How often a starting server is probed.
const PROBE_EVERY: Duration = Duration::from_millis(50);
/// Longest wait, once the process exited, for the rest of its output (a child it left
/// behind may hold its pipes open).
const OUTPUT_AFTER_EXIT: Duration = Duration::from_secs(1);

/// Builds the command of one start (confinement, environment, enclosure applied).
pub(crate) type Spawn = Box<dyn Fn() -> Result<Command, SandboxError> + Send + Sync>;

/// A supervised dev server; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Supervisor {
    inner: Arc<Inner>,
    state: watch::Receiver<DevServerState>,
}

#[derive(Debug)]
struct Inner {
    stop: CancellationToken,
    pid: AtomicU32,
    restarts: AtomicU32,
    endpoint: DevEndpoint,
    tail: LineTail,
}

impl Supervisor {
    /// Starts supervising what `spawn` makes, reached at `endpoint`; it stops with `parent`.
    pub(crate) fn start(spawn: Spawn, endpoint: DevEndpoint, parent: &CancellationToken) -> Self {
        let inner = Arc::new(Inner {
            stop: parent.child_token(),
            pid: AtomicU32::new(0),
            restarts: AtomicU32::new(0),
            endpoint,
            tail: LineTail::default(),
        });
        let (tx, state) = watch::channel(DevServerState::Starting);
        tokio::spawn(supervise(spawn, inner.clone(), tx));
        Self { inner, state }
    }

    /// What it is doing now.
    pub(crate) fn status(&self) -> DevServerStatus {
        DevServerStatus {
            state: *self.state.borrow(),
            restarts: self.inner.restarts.load(Ordering::SeqCst),
            pid: self.inner.pid.load(Ordering::SeqCst),
            endpoint: self.inner.endpoint.clone(),
            output: self.inner.tail.lines(),
        }
    }

    /// Whether it still runs or will be restarted (not stopped, not given up on).
    pub(crate) fn is_supervising(&self) -> bool {
        !self.inner.stop.is_cancelled()
    }

    /// Its status once it is no longer starting, or after `wait`.
    pub(crate) async fn settled(&self, wait: Duration) -> DevServerStatus {
        let mut state = self.state.clone();
        let _ =
            tokio::time::timeout(wait, state.wait_for(|s| *s != DevServerState::Starting)).await;
        self.status()
    }

    /// Stops supervising and kills the current process's tree at once (the sandbox stops).
    pub(crate) fn stop_now(&self) {
        self.inner.stop.cancel();
        let pid = self.inner.pid.load(Ordering::SeqCst);
        if pid != 0 {
            kill_tree(pid);
        }
    }
}

/// How one start ended.
enum Ended {
    /// Told to stop.
    Stopped,
    /// Exited on its own; whether it had answered before.
    Exited { status: String, answered: bool },
}

async fn supervise(spawn: Spawn, inner: Arc<Inner>, state: watch::Sender<DevServerState>) {
    let mut failures = 0u32;
    loop {
        let _ = state.send(DevServerState::Starting);
        let ended = match spawn().and_then(|command| launch(command, &inner)) {
            Ok((child, output)) => {
                let ended = run_once(child, &inner, &state).await;
                // What it printed before it exited comes before the line saying so.
                if matches!(ended, Ended::Exited { .. }) {
                    let drained = async {
                        for reader in output {
                            let _ = reader.await;
                        }
                    };
                    let _ = tokio::time::timeout(OUTPUT_AFTER_EXIT, drained).await;
                }
                ended
            }
            Err(e) => Ended::Exited {
                status: format!("could not start: {e}"),
                answered: false,
            },
        };
        inner.pid.store(0, Ordering::SeqCst);
        let Ended::Exited { status, answered } = ended else {
            let _ = state.send(DevServerState::Stopped);
            return;
        };
        inner
            .tail
            .push(&format!("[draftsmith] the dev server exited: {status}"));
        let _ = state.send(DevServerState::Crashed);
        failures = if answered { 1 } else { failures + 1 };
        if failures >= MAX_FAILURES {
            inner
                .tail
                .push("[draftsmith] it keeps failing; not restarted");
            inner.stop.cancel();
            return;
        }
        let pause = Duration::from_millis(250 * 2u64.pow(failures.saturating_sub(1)));
        tokio::select! {
            () = inner.stop.cancelled() => {
                let _ = state.send(DevServerState::Stopped);
                return;
            }
            () = tokio::time::sleep(pause) => {}
        }
        inner.restarts.fetch_add(1, Ordering::SeqCst);
        tracing::info!(
            restarts = inner.restarts.load(Ordering::SeqCst),
            "restarting a dev server"
        );
    }
}

/// Spawns `command` as a group leader with its output followed into the tail; the handles
/// end when its output does.
fn launch(
    mut command: Command,
    inner: &Inner,
) -> Result<(Child, Vec<JoinHandle<()>>), SandboxError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| SandboxError::Process(format!("the dev server: {e}")))?;
    inner.pid.store(child.id().unwrap_or(0), Ordering::SeqCst);
    let mut output = Vec::with_capacity(2);
    if let Some(out) = child.stdout.take() {
        output.push(inner.tail.follow(out));
    }
    if let Some(err) = child.stderr.take() {
        output.push(inner.tail.follow(err));
    }
    Ok((child, output))
}

/// Waits for the process to answer, then for it to exit or be stopped.
async fn run_once(mut child: Child, inner: &Inner, state: &watch::Sender<DevServerState>) -> Ended {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    let mut answered = false;
    loop {
        if inner.stop.is_cancelled() {
            return stop(child, inner).await;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return exited(status, answered);
        }
        if answers_http(&inner.endpoint).await {
            answered = true;
            let _ = state.send(DevServerState::Live);
            break;
        }
        if tokio::time::Instant::now() > deadline {
            kill_tree(inner.pid.load(Ordering::SeqCst));
            let _ = child.wait().await;
            return Ended::Exited {
                status: format!("not answering after {} s", START_TIMEOUT.as_secs()),
                answered,
            };
        }
        tokio::select! {
            () = inner.stop.cancelled() => return stop(child, inner).await,
            () = tokio::time::sleep(PROBE_EVERY) => {}
        }
    }
    tokio::select! {
        biased;
        () = inner.stop.cancelled() => stop(child, inner).await,
        status = child.wait() => match status {
            Ok(status) => exited(status, answered),
            Err(e) => Ended::Exited { status: format!("wait failed: {e}"), answered },
        },
    }
}

/// Kills the process's whole tree and reaps it.
async fn stop(mut child: Child, inner: &Inner) -> Ended {
    kill_tree(inner.pid.load(Ordering::SeqCst));
    let _ = child.wait().await;
    Ended::Stopped
}

fn exited(status: ExitStatus, answered: bool) -> Ended {
    Ended::Exited {
        status: status.to_string(),
        answered,
    }
}
