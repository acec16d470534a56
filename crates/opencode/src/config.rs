//! The engine's configuration: where the binary is, how servers are kept, the time limits
//! and the failure policy. The service fills it from its configuration's `[opencode]`
//! section (where SPEC §5's `APPS_…` variables are read, with the rest of its overrides).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::settings::PermissionAction;

/// Where one workspace's server lives: its private HOME and the argv it runs under.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The server's private HOME (the four `XDG_*` directories go under it).
    pub home: PathBuf,
    /// The environment the server starts with (a sandbox's `PATH` and locale), as the
    /// sandbox's own commands do; empty passes on the service's `PATH` and locale.
    pub env: Vec<(String, String)>,
    /// The wrapper argv (e.g. `bwrap … --`); empty runs OpenCode directly.
    pub confinement: Vec<String>,
    /// How the server is reached and reaches its model when it lives in a private network
    /// namespace; `None` when it shares the host's loopback.
    pub network: Option<LaunchNetwork>,
    /// Applied to the command right before the spawn, after the HOME is written (the
    /// sandbox's cgroup, rlimits and the hand-over of its directories to its uid).
    pub prepare: Option<CommandHook>,
}

/// A server across a network boundary: draftsmith reaches it through a Unix socket, and it
/// reaches its model-gate route on its own loopback.
#[derive(Debug, Clone)]
pub struct LaunchNetwork {
    /// The host path of the Unix socket the server is reached through.
    pub socket: PathBuf,
    /// The port it must listen on, on its own loopback.
    pub port: u16,
    /// Where its model-gate route must be served.
    pub gate: GateEndpoint,
    /// The gate's root as the server reaches it (`http://127.0.0.1:P`).
    pub gate_url: String,
}

/// Where a server's model-gate route is served from.
#[derive(Debug, Clone)]
pub enum GateEndpoint {
    /// A listener already bound on the server's own loopback (inside its network
    /// namespace): its model requests reach the gate with nothing between.
    Listener(Arc<std::net::TcpListener>),
    /// A Unix socket that a forwarder beside the server connects its loopback port to.
    Socket(PathBuf),
}

/// What a [`CommandHook`] runs.
pub type CommandHookFn = dyn Fn(&mut tokio::process::Command) -> Result<(), String> + Send + Sync;

/// A last step on the server's command before it is spawned; an error fails the start.
#[derive(Clone)]
pub struct CommandHook(pub Arc<CommandHookFn>);

impl std::fmt::Debug for CommandHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandHook")
    }
}

/// The launch of a workspace's server, from the workspace and the directory OpenCode is
/// installed in (which a confinement must keep visible, read-only); an error fails the
/// start with `CODING_AGENT_OPENCODE_START_FAILED`. The sandbox controller provides one, so
/// the server runs inside its sandbox's confinement and HOME and dies with the sandbox.
pub type LaunchFn = Arc<dyn Fn(&Path, &Path) -> Result<Launch, String> + Send + Sync>;

/// Whether servers outlive runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ServerPolicy {
    /// One server per workspace, reused by the next run there and restarted if it died;
    /// stopped by [`crate::OpencodeEngine::stop_server`] when the sandbox goes (default).
    #[default]
    PerWorkspace,
    /// A fresh server for every run, stopped when the run ends.
    PerRun,
}

/// A server run by somebody else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalServer {
    /// Its root URL.
    pub base_url: String,
    /// Its `OPENCODE_SERVER_PASSWORD`, if it has one.
    pub password: Option<String>,
}

/// Fault injection for tests of the engine's recovery paths; all off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Cut the event stream after this many session events (the run must finish by
    /// polling).
    pub drop_event_stream_after: Option<usize>,
}

/// Everything the engine needs besides the job.
#[derive(Clone)]
pub struct OpencodeConfig {
    /// The `opencode` binary; `None` finds it ([`crate::find_binary`]).
    pub binary: Option<PathBuf>,
    /// Where the private HOMEs live (one per workspace, never inside it) when no `launch`
    /// is set; `None` uses the system temp directory.
    pub homes_dir: Option<PathBuf>,
    /// Server reuse.
    pub server_policy: ServerPolicy,
    /// Use this server instead of spawning one.
    pub external: Option<ExternalServer>,
    /// Limit for starting a server (default 30 s).
    pub start_timeout: Duration,
    /// How long a model call may keep being retried before the run fails
    /// (default 20 s, so a provider that keeps
    /// failing ends the run within 30 s even when no model gate watches it).
    pub max_retry: Duration,
    /// Fail a run whose failed edit no later edit repaired
    /// (default on).
    pub fail_on_unrecovered_edit: bool,
    /// Where and how each workspace's server runs; `None` runs it unconfined with a HOME
    /// under `homes_dir`.
    pub launch: Option<LaunchFn>,
    /// Permission rules appended after draftsmith's (they win). A rule set to `ask` is
    /// answered by the engine with a refusal, so it can never hang a run.
    pub permission_overrides: Vec<(String, PermissionAction)>,
    /// How often the session is polled once the event stream is lost.
    pub poll_interval: Duration,
    /// Test-only fault injection.
    pub faults: Faults,
}

impl std::fmt::Debug for OpencodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpencodeConfig")
            .field("binary", &self.binary)
            .field("homes_dir", &self.homes_dir)
            .field("server_policy", &self.server_policy)
            .field("external", &self.external.as_ref().map(|e| &e.base_url))
            .field("start_timeout", &self.start_timeout)
            .field("max_retry", &self.max_retry)
            .field("fail_on_unrecovered_edit", &self.fail_on_unrecovered_edit)
            .field("launch", &self.launch.is_some())
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

impl Default for OpencodeConfig {
    fn default() -> Self {
        Self {
            binary: None,
            homes_dir: None,
            server_policy: ServerPolicy::PerWorkspace,
            external: None,
            start_timeout: Duration::from_secs(30),
            max_retry: Duration::from_secs(20),
            fail_on_unrecovered_edit: true,
            launch: None,
            permission_overrides: Vec::new(),
            poll_interval: Duration::from_millis(250),
            faults: Faults::default(),
        }
    }
}
