//! The seam for running shell commands: the agent's `run_command` goes through a
//! [`CommandRunner`], local by default and confined by the sandbox crate.

mod local;
mod none;

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::ToolError;

pub use draftsmith_process::CommandOutput;
pub use local::LocalCommandRunner;
pub use none::NoCommands;

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

impl CommandRequest {
    /// The time and output bounds the supervisor holds the command to.
    pub fn bounds(&self) -> draftsmith_process::Bounds {
        draftsmith_process::Bounds {
            timeout: self.timeout,
            max_output_bytes: self.max_output_bytes,
        }
    }
}
