//! An app's dev server (the live preview): a long-lived process of its sandbox, started on
//! demand, confined like the sandbox's commands, reached through a Unix socket forwarded to
//! its port inside the sandbox's network (or a host loopback port when the sandbox shares
//! the host's network), restarted when it crashes, and stopped with the sandbox.

mod probe;
mod supervisor;
mod tail;

pub(crate) use supervisor::{Spawn, Supervisor};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The base path a dev server is told to serve under; the preview's proxy maps its
/// capability URL onto it (and it back in what the server answers), so the dev server
/// never learns the builder's URLs or tokens.
pub const LIVE_BASE: &str = "/__draftsmith_live__/";
/// The HMR WebSocket's path under [`LIVE_BASE`].
pub const HMR_PATH: &str = "__hmr";

/// How to run an app's dev server (from its template).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevServerSpec {
    /// Shell text run with `sh -c` in the workspace, dependencies linked first; it must
    /// listen on `127.0.0.1:$DRAFTSMITH_PREVIEW_PORT`.
    pub command: String,
    /// The port it listens on inside the sandbox's private network.
    pub port: u16,
    /// Extra environment variables (the base and HMR paths).
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

/// Where a dev server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DevServerState {
    /// Spawned, not answering HTTP yet.
    Starting,
    /// Answering HTTP.
    Live,
    /// Exited on its own; restarted after a pause unless it failed too often in a row.
    Crashed,
    /// Stopped with its sandbox.
    Stopped,
}

/// How the service reaches a dev server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DevEndpoint {
    /// A Unix socket on this host, forwarded to its port inside the sandbox's network.
    Unix(PathBuf),
    /// A port on this host's loopback (the sandbox shares the host's network).
    Tcp(u16),
}

/// What a dev server is doing, for the proxy and the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevServerStatus {
    /// Its state.
    pub state: DevServerState,
    /// How often it was restarted after a crash.
    pub restarts: u32,
    /// The process id of its current process (its confinement wrapper), 0 when none.
    pub pid: u32,
    /// Where it is reached.
    pub endpoint: DevEndpoint,
    /// The last lines it printed (stdout and stderr), oldest first.
    pub output: Vec<String>,
}
