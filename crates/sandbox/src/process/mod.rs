//! Process hygiene: every command runs in its own process group, registered with its
//! sandbox's [`ProcessGroups`] so that stop, cancel and timeout kill all of it.

mod run;

pub use draftsmith_process::ProcessGroups;
pub(crate) use draftsmith_process::kill_by_cwd;
pub use run::SANDBOX_PATH;
pub(crate) use run::{base_env, run_in_group};

use std::ffi::OsString;
use std::path::Path;

use draftsmith_tools::{CommandOutput, CommandRequest, CommandRunner, ToolError};
use tokio_util::sync::CancellationToken;

use crate::enclosure::Enclosure;

/// Runs `request`'s shell text as `<wrapper…> sh -c <text>` (plain `sh` when `wrapper` is
/// empty) in the request's directory with only the sandbox environment, inside
/// `enclosure`: the child joins the sandbox's cgroup and takes its rlimits before exec,
/// and the output names a limit the command ran into.
pub(crate) async fn run_shell(
    wrapper: Vec<OsString>,
    request: &CommandRequest,
    cancel: CancellationToken,
    home: &Path,
    groups: &ProcessGroups,
    enclosure: &Enclosure,
) -> Result<CommandOutput, ToolError> {
    let mut argv = wrapper;
    argv.extend(["sh".into(), "-c".into(), request.command.clone().into()]);
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir(&request.cwd)
        .env_clear()
        .envs(base_env(home))
        .envs(request.env.iter().map(|(k, v)| (k, v)));
    enclosure
        .admit(&mut command)
        .await
        .map_err(|e| ToolError::failed(format!("cannot start the command: {e}")))?;
    let before = enclosure.counters();
    let mut out = run_in_group(command, request, cancel, groups).await?;
    enclosure.annotate(&mut out, before);
    Ok(out)
}

/// Runs commands on the host without confinement (`isolation = none`), still in their own
/// process group so nothing they start outlives them.
#[derive(Debug, Clone)]
pub struct UnconfinedCommandRunner {
    home: std::path::PathBuf,
    groups: ProcessGroups,
    enclosure: Enclosure,
}

impl UnconfinedCommandRunner {
    /// A runner whose commands see `home` as `$HOME`, register in `groups` and start
    /// inside `enclosure` (limits apply without confinement too).
    pub fn new(home: std::path::PathBuf, groups: ProcessGroups, enclosure: Enclosure) -> Self {
        Self {
            home,
            groups,
            enclosure,
        }
    }
}

#[async_trait::async_trait]
impl CommandRunner for UnconfinedCommandRunner {
    async fn run(
        &self,
        request: CommandRequest,
        cancel: CancellationToken,
    ) -> Result<CommandOutput, ToolError> {
        let (home, groups, enclosure) = (&self.home, &self.groups, &self.enclosure);
        run_shell(Vec::new(), &request, cancel, home, groups, enclosure).await
    }
}
