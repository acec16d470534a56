//! The spawned `opencode serve` process: its output kept as a bounded tail, its exit watched
//! by a task that reaps it, and its whole tree killed on `kill()` or drop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use draftsmith_process::{descendants, is_running, kill_tree};
use tokio::process::Command;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::output::OutputTail;

#[derive(Debug)]
pub(super) struct ServerProcess {
    pub(super) pid: u32,
    exited: watch::Receiver<Option<String>>,
    output: OutputTail,
    readers: Vec<JoinHandle<()>>,
    stopped: AtomicBool,
}

impl ServerProcess {
    /// Spawns `command`; the receiver gets the URL from the listening line once it appears.
    pub(super) fn spawn(
        mut command: Command,
    ) -> std::io::Result<(ServerProcess, oneshot::Receiver<String>)> {
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or_default();
        let output = OutputTail::default();
        let (listening_tx, listening_rx) = oneshot::channel();
        let readers = output.start(&mut child, listening_tx);
        let (exit_tx, exited) = watch::channel(None);
        // The waiter owns the child and ends when it does; it must outlive a kill to reap.
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => status.to_string(),
                Err(err) => format!("wait failed: {err}"),
            };
            let _ = exit_tx.send(Some(status));
        });
        let process = ServerProcess {
            pid,
            exited,
            output,
            readers,
            stopped: AtomicBool::new(false),
        };
        Ok((process, listening_rx))
    }

    /// Its exit status, once it has exited.
    pub(super) fn exit_status(&self) -> Option<String> {
        self.exited.borrow().clone()
    }

    /// A watch on its exit status (`None` while it runs).
    pub(super) fn exited(&self) -> watch::Receiver<Option<String>> {
        self.exited.clone()
    }

    /// Neither killed nor exited.
    pub(super) fn is_alive(&self) -> bool {
        !self.stopped.load(Ordering::SeqCst) && self.exited.borrow().is_none()
    }

    /// Lets the readers take in what it said before dying (its pipes are closed then).
    pub(super) async fn drain(&mut self) {
        for reader in &mut self.readers {
            let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
        }
    }

    pub(super) fn kill(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if self.exited.borrow().is_none() {
            kill_tree(self.pid);
        }
        for reader in &self.readers {
            reader.abort();
        }
    }

    /// Kills the whole tree and waits (at most 5 s) until the process is reaped and every
    /// process of its tree is gone.
    pub(super) async fn stop(&self) {
        let mut tree = descendants(self.pid);
        self.kill();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut exited = self.exited.clone();
        let _ = tokio::time::timeout_at(deadline, exited.wait_for(|status| status.is_some())).await;
        while !tree.is_empty() && tokio::time::Instant::now() < deadline {
            tree.retain(|pid| is_running(*pid));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The last lines of its output, joined with ` | `.
    pub(super) fn tail(&self) -> String {
        self.output.text()
    }
}

impl Drop for ServerProcess {
    // Also covers a start abandoned half-way (its future dropped while waiting for ready).
    fn drop(&mut self) {
        self.kill();
    }
}
