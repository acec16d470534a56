//! The runner a file tool's context gets: setting up a sandbox's confinement (cgroup
//! limits, network) costs more than a file tool itself, and a file tool runs no command.

use tokio_util::sync::CancellationToken;

use super::{CommandOutput, CommandRequest, CommandRunner};
use crate::error::ToolError;

/// Refuses every command; for contexts of tools that [`crate::runs_commands`] says run none.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCommands;

#[async_trait::async_trait]
impl CommandRunner for NoCommands {
    async fn run(
        &self,
        _request: CommandRequest,
        _cancel: CancellationToken,
    ) -> Result<CommandOutput, ToolError> {
        Err(ToolError::failed("this tool runs no commands"))
    }
}
