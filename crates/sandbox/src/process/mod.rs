//! Process hygiene: every command runs in its own process group, registered with its
//! sandbox's [`ProcessGroups`] so that stop, cancel and timeout kill all of it.

mod groups;
mod run;

pub use groups::ProcessGroups;
pub(crate) use groups::kill_by_cwd;
pub(crate) use run::{base_env, run_in_group};

use draftsmith_tools::{CommandOutput, CommandRequest, CommandRunner, ToolError};
use tokio_util::sync::CancellationToken;

/// Runs commands on the host without confinement (`isolation = none`), still in their own
/// process group so nothing they start outlives them.
#[derive(Debug, Clone)]
pub struct UnconfinedCommandRunner {
    home: std::path::PathBuf,
    groups: ProcessGroups,
}

impl UnconfinedCommandRunner {
    /// A runner whose commands see `home` as `$HOME` and register in `groups`.
    pub fn new(home: std::path::PathBuf, groups: ProcessGroups) -> Self {
        Self { home, groups }
    }
}

#[async_trait::async_trait]
impl CommandRunner for UnconfinedCommandRunner {
    async fn run(
        &self,
        request: CommandRequest,
        cancel: CancellationToken,
    ) -> Result<CommandOutput, ToolError> {
        let mut command = tokio::process::Command::new("sh");
        command
            .arg("-c")
            .arg(&request.command)
            .current_dir(&request.cwd)
            .env_clear()
            .envs(base_env(&self.home))
            .envs(request.env.iter().map(|(k, v)| (k, v)));
        run_in_group(command, &request, cancel, &self.groups).await
    }
}
