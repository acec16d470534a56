//! One `opencode serve` process: started in a workspace with a private HOME, the generated
//! configuration, a random password and a free loopback port, optionally under a
//! confinement wrapper; ready once it printed its listening line and answered
//! `/global/health`; killed with its whole process tree on `stop()` or drop.

mod child;
mod options;
mod ready;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::client::{ClientError, ModelRef, OpencodeClient, PartInput, PromptBody};
use crate::config::CommandHook;
use crate::seed::{SeedError, prepare_home};
use crate::stream::EventHub;
use crate::wire::Session;
use child::ServerProcess;
use ready::{NotReady, wait_ready};

pub use options::ServerOptions;

/// The title, and the text, of the session a server is warmed up with.
const WARM_UP_TITLE: &str = "draftsmith warm-up";

/// Why a server did not start; every case maps to `CODING_AGENT_OPENCODE_START_FAILED`.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The private HOME could not be prepared.
    #[error(transparent)]
    Home(#[from] SeedError),
    /// The process could not be spawned (missing binary, bad wrapper).
    #[error("could not spawn {program}: {source}")]
    Spawn {
        /// What was run.
        program: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The process exited before it was ready.
    #[error("opencode exited before it was ready ({status}); last output: {output}")]
    Exited {
        /// Its exit status.
        status: String,
        /// The tail of its output.
        output: String,
    },
    /// Not ready within the start timeout.
    #[error("opencode was not ready within {} s; last output: {output}", after.as_secs())]
    Timeout {
        /// The timeout.
        after: Duration,
        /// The tail of its output.
        output: String,
    },
}

/// A running server (or an external one); cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct OpencodeServer {
    client: OpencodeClient,
    process: Option<ServerProcess>,
    start_ms: u64,
    /// The one event connection its runs share, opened by the first.
    events: OnceLock<EventHub>,
    /// A session being made ahead for the next run, while the server is idle.
    spare: Mutex<Option<JoinHandle<Result<Session, ClientError>>>>,
}

impl OpencodeServer {
    /// Spawns `opencode serve` and waits until it is ready, or fails within the timeout
    /// (the process is killed then).
    pub async fn start(options: ServerOptions) -> Result<Self, StartError> {
        let clock = Instant::now();
        let deadline = clock + options.start_timeout;
        prepare_home(&options.home)?;
        let port = match &options.network {
            Some(network) => network.port,
            None => free_port().map_err(|source| StartError::Spawn {
                program: "a loopback port".into(),
                source,
            })?,
        };
        let socket = options.network.as_ref().map(|n| n.socket.clone());
        if let Some(socket) = &socket {
            // A stale socket from a server that died would answer nothing.
            let _ = std::fs::remove_file(socket);
        }
        let client_for = move |url: String, password: String| match &socket {
            Some(socket) => OpencodeClient::over_socket(url, Some(password), socket),
            None => OpencodeClient::new(url, Some(password)),
        };
        let password = options.password.clone().unwrap_or_else(random_password);
        let (process, listening) = spawn(&options, port, &password)?;
        let fallback_url = format!("http://127.0.0.1:{port}");
        let ready = wait_ready(
            &process,
            listening,
            &fallback_url,
            &|url| client_for(url, password.clone()),
            deadline,
        )
        .await;
        let base_url = match ready {
            Ok(url) => url,
            Err(failure) => return Err(abandon(process, failure, options.start_timeout).await),
        };
        let start_ms = clock.elapsed().as_millis() as u64;
        let pid = process.pid;
        tracing::info!(pid, %base_url, start_ms, "opencode server ready");
        Ok(Self {
            client: client_for(base_url, password),
            process: Some(process),
            start_ms,
            events: OnceLock::new(),
            spare: Mutex::default(),
        })
    }

    /// A server somebody else runs (`APPS_CODING_AGENT_OPENCODE_BASE_URL`); nothing is
    /// spawned or killed.
    pub fn external(base_url: String, password: Option<String>) -> Self {
        Self {
            client: OpencodeClient::new(base_url.trim_end_matches('/').to_owned(), password),
            process: None,
            start_ms: 0,
            events: OnceLock::new(),
            spare: Mutex::default(),
        }
    }

    /// The same server with every call scoped to `directory` (how one external server
    /// serves several workspaces).
    pub fn with_directory(mut self, directory: String) -> Self {
        self.client = self.client.clone().scoped(directory);
        self
    }

    /// The HTTP client for this server.
    pub fn client(&self) -> &OpencodeClient {
        &self.client
    }

    /// The server's event connection, shared by its runs (opened on first use).
    pub fn events(&self) -> &EventHub {
        self.events
            .get_or_init(|| EventHub::start(self.client.clone()))
    }

    /// How many times the event connection was opened (0 before the first run).
    pub fn event_connections(&self) -> u64 {
        self.events.get().map_or(0, EventHub::connections)
    }

    /// Milliseconds from spawn to ready (0 for an external server).
    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    /// The process id, for an own server.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid)
    }

    /// Whether this is a spawned server (`false` for an external one).
    pub fn is_spawned(&self) -> bool {
        self.process.is_some()
    }

    /// Starts making a session titled `title` for the next run, unless one is on its way:
    /// the run then finds it ready instead of waiting for OpenCode to make it.
    pub fn make_session_ahead(&self, title: &'static str) {
        let Ok(mut spare) = self.spare.lock() else {
            return;
        };
        if spare.is_none() {
            let client = self.client.clone();
            *spare = Some(tokio::spawn(
                async move { client.create_session(title).await },
            ));
        }
    }

    /// The session made ahead, once made; `None` when none was asked for or making it
    /// failed (the run makes its own then).
    pub async fn take_session_made_ahead(&self) -> Option<Session> {
        let making = self.spare.lock().ok()?.take()?;
        match making.await {
            Ok(Ok(session)) => Some(session),
            Ok(Err(error)) => {
                tracing::debug!(%error, "the session made ahead failed; making one now");
                None
            }
            Err(_) => None,
        }
    }

    /// Loads what OpenCode loads for its instance's first prompt and its first step (about
    /// a second and a half here) without a model call: a message that wants no reply, for
    /// `model`, in a session of its own (no run's session holds it), and a file search,
    /// which starts the workspace's file watcher and search.
    pub async fn warm_up(&self, model: &ModelRef) -> Result<(), ClientError> {
        let session = self.client.create_session(WARM_UP_TITLE).await?;
        let body = PromptBody {
            model: model.clone(),
            system: None,
            parts: vec![PartInput::Text {
                text: WARM_UP_TITLE.into(),
            }],
            no_reply: true,
        };
        self.client.prompt_sync(&session.id, &body).await?;
        self.client.find_files(WARM_UP_TITLE).await.map(drop)
    }

    /// Whether the process still runs (an external server is assumed to).
    pub fn is_alive(&self) -> bool {
        self.process.as_ref().is_none_or(ServerProcess::is_alive)
    }

    /// Why the process ended, with its last output, once it has.
    pub fn exit_report(&self) -> Option<String> {
        let process = self.process.as_ref()?;
        let status = process.exit_status()?;
        Some(format!("{status}; last output: {}", process.tail()))
    }

    /// Kills the server's whole process tree and waits (at most 5 s) until the server is
    /// reaped and every process of its tree is gone, so nothing of it outlives the call.
    pub async fn stop(&self) {
        if let Some(events) = self.events.get() {
            events.close();
        }
        if let Some(process) = &self.process {
            process.stop().await;
        }
    }
}

/// Builds the command, applies the launch hook and spawns it.
fn spawn(
    options: &ServerOptions,
    port: u16,
    password: &str,
) -> Result<(ServerProcess, oneshot::Receiver<String>), StartError> {
    let mut command = options.command(port, password);
    if let Some(CommandHook(prepare)) = &options.prepare {
        prepare(&mut command).map_err(|e| StartError::Spawn {
            program: options.program(),
            source: std::io::Error::other(e),
        })?;
    }
    ServerProcess::spawn(command).map_err(|source| StartError::Spawn {
        program: options.program(),
        source,
    })
}

/// Kills a server that did not become ready and says why, with its last output.
async fn abandon(mut process: ServerProcess, failure: NotReady, timeout: Duration) -> StartError {
    if matches!(failure, NotReady::Exited(_)) {
        process.drain().await;
    }
    process.kill();
    let output = process.tail();
    match failure {
        NotReady::Exited(status) => StartError::Exited { status, output },
        NotReady::Timeout => StartError::Timeout {
            after: timeout,
            output,
        },
    }
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// 48 random hex digits (a server password, a model-gate route).
pub(crate) fn random_password() -> String {
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        // Without an OS random source, fall back to the clock and pid: still unguessable
        // enough for a loopback-only server, and never empty.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        return format!("{nanos:x}{:x}", std::process::id());
    }
    hex::encode(bytes)
}
