//! How to start a server, and the command line that becomes: `opencode serve` on a loopback
//! port, in the workspace, with nothing of the service's environment but what it needs.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::config::{CommandHook, LaunchNetwork};
use crate::seed::xdg_dirs;

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
    /// The environment it starts with (see [`crate::Launch::env`]); empty passes on the
    /// service's `PATH` and locale.
    pub env: Vec<(String, String)>,
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
    pub network: Option<LaunchNetwork>,
}

impl ServerOptions {
    /// The `opencode serve` command on `port` with `password`, under the confinement wrapper.
    pub(super) fn command(&self, port: u16, password: &str) -> Command {
        let mut argv: Vec<String> = self.confinement.clone();
        argv.push(self.binary.display().to_string());
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .args(["serve", "--hostname", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .current_dir(&self.workspace)
            // Nothing of the service's environment (tokens, database URLs) reaches the agent.
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("HOME", &self.home)
            .envs(xdg_dirs(&self.home))
            .env("OPENCODE_CONFIG_CONTENT", &self.config_json)
            .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
            .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
            .env("OPENCODE_SERVER_PASSWORD", password)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if self.env.is_empty() {
            for key in ["PATH", "LANG", "LC_ALL", "TZ"] {
                if let Some(value) = std::env::var_os(key) {
                    command.env(key, value);
                }
            }
        }
        command
    }

    /// What is run first: the wrapper, or `opencode` itself (for spawn errors).
    pub(super) fn program(&self) -> String {
        self.confinement
            .first()
            .cloned()
            .unwrap_or_else(|| self.binary.display().to_string())
    }
}
