//! The seam for running shell commands: the agent's `run_command` goes through a
//! [`CommandRunner`], local by default and confined by the sandbox crate.

mod local;
mod tail;

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::ToolError;

pub use local::LocalCommandRunner;
pub use tail::{TailBuffer, spawn_tail_reader};

/// Runs one shell command to completion, timeout or cancellation.
#[async_trait::async_trait]
pub trait CommandRunner: Send + Sync {
    /// Runs `request`; returns once the command and every process it started are gone.
    async fn run(
        &self,
        request: CommandRequest,
        cancel: CancellationToken,
    ) -> Result<CommandOutput, ToolError>;
}

/// One command to run, with its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRequest {
    /// Shell text, run with `sh -c`.
    pub command: String,
    /// Directory the command starts in.
    pub cwd: PathBuf,
    /// Longest the command may run before its process group is killed.
    pub timeout: Duration,
    /// Most bytes of combined output kept (the tail).
    pub max_output_bytes: usize,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// How a command ended and what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit code, or `None` when the command was killed by a signal.
    pub exit_code: Option<i32>,
    /// Combined stdout and stderr; when longer than the bound, its tail after a truncation mark.
    pub output: String,
    /// The time limit was reached and the command was killed.
    pub timed_out: bool,
    /// The run was cancelled and the command was killed.
    pub cancelled: bool,
    /// Wall-clock duration in milliseconds.
    pub ms: u64,
}
