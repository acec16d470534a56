//! One `opencode serve` process: started in a workspace with a private HOME, the generated
//! configuration, a random password and a free loopback port, optionally under a
//! confinement wrapper; ready once it printed its listening line and answered
//! `/global/health`; killed with its whole process tree on `stop()` or drop.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use draftsmith_process::{descendants, is_running, kill_tree};
use tokio::process::Command;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::client::OpencodeClient;
use crate::config::CommandHook;
use crate::output::OutputTail;
use crate::seed::{SeedError, prepare_home, xdg_dirs};

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The `opencode` binary.
    pub binary: PathBuf,
    /// Its working directory: the workspace the agent edits.
    pub workspace: PathBuf,
    /// A private HOME (the four `XDG_*` directories go under it), so servers never share
    /// OpenCode's database or settings.
    pub home: PathBuf,
    /// `OPENCODE_CONFIG_CONTENT`.
    pub config_json: String,
    /// A wrapper argv the server runs under (e.g. bubblewrap and its arguments); empty
    /// spawns `opencode` directly.
    pub confinement: Vec<String>,
    /// Applied to the command right before the spawn (see [`crate::Launch::prepare`]).
    pub prepare: Option<CommandHook>,
    /// How long the whole start (spawn, listening line, health) may take.
    pub start_timeout: Duration,
    /// `OPENCODE_SERVER_PASSWORD`; `None` generates a random one (set it only to share the
    /// server, e.g. as an external server).
    pub password: Option<String>,
    /// Across a network boundary: the port it listens on inside and the Unix socket it is
    /// reached through; `None` picks a free host loopback port.
    pub network: Option<crate::config::LaunchNetwork>,
}

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
}

#[derive(Debug)]
struct ServerProcess {
    pid: u32,
    exited: watch::Receiver<Option<String>>,
    output: OutputTail,
    readers: Vec<JoinHandle<()>>,
    stopped: AtomicBool,
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
        let mut command = build_command(&options, port, &password);
        if let Some(CommandHook(prepare)) = &options.prepare {
            prepare(&mut command).map_err(|e| StartError::Spawn {
                program: program_name(&options),
                source: std::io::Error::other(e),
            })?;
        }
        let mut child = command.spawn().map_err(|source| StartError::Spawn {
            program: program_name(&options),
            source,
        })?;
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
        let mut process = ServerProcess {
            pid,
            exited,
            output,
            readers,
            stopped: AtomicBool::new(false),
        };
        let fallback_url = format!("http://127.0.0.1:{port}");
        let ready = wait_ready(
            &process,
            listening_rx,
            &fallback_url,
            &|url| client_for(url, password.clone()),
            deadline,
        )
        .await;
        let base_url = match ready {
            Ok(url) => url,
            Err(failure) => {
                if matches!(failure, NotReady::Exited(_)) {
                    // Let the readers drain what it said before dying (the pipes are closed).
                    for reader in &mut process.readers {
                        let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
                    }
                }
                process.kill();
                let output = process.tail();
                return Err(match failure {
                    NotReady::Exited(status) => StartError::Exited { status, output },
                    NotReady::Timeout => StartError::Timeout {
                        after: options.start_timeout,
                        output,
                    },
                });
            }
        };
        let start_ms = clock.elapsed().as_millis() as u64;
        tracing::info!(pid, %base_url, start_ms, "opencode server ready");
        Ok(Self {
            client: client_for(base_url, password),
            process: Some(process),
            start_ms,
        })
    }

    /// A server somebody else runs (`APPS_CODING_AGENT_OPENCODE_BASE_URL`); nothing is
    /// spawned or killed.
    pub fn external(base_url: String, password: Option<String>) -> Self {
        Self {
            client: OpencodeClient::new(base_url.trim_end_matches('/').to_owned(), password),
            process: None,
            start_ms: 0,
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

    /// Whether the process still runs (an external server is assumed to).
    pub fn is_alive(&self) -> bool {
        self.process
            .as_ref()
            .is_none_or(|p| !p.stopped.load(Ordering::SeqCst) && p.exited.borrow().is_none())
    }

    /// Why the process ended, with its last output, once it has.
    pub fn exit_report(&self) -> Option<String> {
        let process = self.process.as_ref()?;
        let status = process.exited.borrow().clone()?;
        Some(format!("{status}; last output: {}", process.tail()))
    }

    /// Kills the server's whole process tree and waits (at most 5 s) until the server is
    /// reaped and every process of its tree is gone, so nothing of it outlives the call.
    pub async fn stop(&self) {
        let Some(process) = &self.process else {
            return;
        };
        let mut tree = descendants(process.pid);
        process.kill();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut exited = process.exited.clone();
        let _ = tokio::time::timeout_at(deadline, exited.wait_for(|status| status.is_some())).await;
        while !tree.is_empty() && tokio::time::Instant::now() < deadline {
            tree.retain(|pid| is_running(*pid));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for ServerProcess {
    // Also covers a start abandoned half-way (its future dropped while waiting for ready).
    fn drop(&mut self) {
        self.kill();
    }
}

impl ServerProcess {
    fn kill(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if self.exited.borrow().is_none() {
            kill_tree(self.pid);
        }
        for reader in &self.readers {
            reader.abort();
        }
    }

    fn tail(&self) -> String {
        self.output.text()
    }
}

/// Why a start did not become ready.
enum NotReady {
    Exited(String),
    Timeout,
}

/// Waits for the listening line, then for `/global/health`, before `deadline`.
async fn wait_ready(
    process: &ServerProcess,
    listening: oneshot::Receiver<String>,
    fallback_url: &str,
    client_for: &(dyn Fn(String) -> OpencodeClient + Sync),
    deadline: Instant,
) -> Result<String, NotReady> {
    let mut exited = process.exited.clone();
    let deadline = tokio::time::Instant::from_std(deadline);
    let url = tokio::select! {
        url = listening => url.unwrap_or_else(|_| fallback_url.to_owned()),
        status = exited.wait_for(|s| s.is_some()) => {
            let status = status.map(|s| s.clone().unwrap_or_default()).unwrap_or_default();
            return Err(NotReady::Exited(status));
        }
        _ = tokio::time::sleep_until(deadline) => return Err(NotReady::Timeout),
    };
    let client = client_for(url.clone());
    loop {
        if let Some(status) = exited.borrow().clone() {
            return Err(NotReady::Exited(status));
        }
        if client.healthy().await {
            return Ok(url);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(NotReady::Timeout);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn build_command(options: &ServerOptions, port: u16, password: &str) -> Command {
    let mut argv: Vec<String> = options.confinement.clone();
    argv.push(options.binary.display().to_string());
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .args(["serve", "--hostname", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .current_dir(&options.workspace)
        // Nothing of the service's environment (tokens, database URLs) reaches the agent.
        .env_clear()
        .env("HOME", &options.home)
        .envs(xdg_dirs(&options.home))
        .env("OPENCODE_CONFIG_CONTENT", &options.config_json)
        .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
        .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
        .env("OPENCODE_SERVER_PASSWORD", password)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for key in ["PATH", "LANG", "LC_ALL", "TZ"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command
}

fn program_name(options: &ServerOptions) -> String {
    options
        .confinement
        .first()
        .cloned()
        .unwrap_or_else(|| options.binary.display().to_string())
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
