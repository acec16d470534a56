//! The default runner: `sh -c` under the process supervisor, in its own process group, so
//! a timeout or a cancel kills the command and everything it started, grandchildren
//! included.

use draftsmith_process::{ProcessGroups, RunError};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{CommandOutput, CommandRequest, CommandRunner};
use crate::error::ToolError;

/// Runs commands directly on this host, unconfined; for development and trusted setups.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalCommandRunner;

#[async_trait::async_trait]
impl CommandRunner for LocalCommandRunner {
    async fn run(
        &self,
        request: CommandRequest,
        cancel: CancellationToken,
    ) -> Result<CommandOutput, ToolError> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&request.command)
            .current_dir(&request.cwd)
            .envs(request.env.iter().map(|(k, v)| (k, v)));
        let groups = ProcessGroups::default();
        draftsmith_process::run(command, request.bounds(), cancel, &groups)
            .await
            .map_err(|e| match e {
                RunError::Spawn(e) => ToolError::failed(format!("cannot start sh: {e}")),
                RunError::Wait(_) => ToolError::failed(e.to_string()),
            })
    }
}
