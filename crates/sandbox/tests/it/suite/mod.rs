//! The behavioural suite of SPEC §6 / issue #5, run against the in-process controller and
//! against the remote one over real HTTP. Each case is one function taking the deployment.

mod boundary;
mod confinement;
mod files;
mod lifecycle;
mod network;
mod processes;

use std::time::Duration;

use draftsmith_sandbox::{ExecRequest, SandboxId};
use tokio_util::sync::CancellationToken;

use crate::support::{Deployment, Env};

const HOUR: Duration = Duration::from_secs(3600);
const GONE: Duration = Duration::from_secs(10);

/// Instantiates every case for both deployments.
macro_rules! both {
    ($($group:ident :: $case:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$group::$case(super::Deployment::Local).await })*
        }
        mod remote {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::$group::$case(super::Deployment::Remote).await })*
        }
    };
}

both!(
    lifecycle::warm_reuse,
    lifecycle::ttl_expiry_reaps_processes_and_directory,
    lifecycle::create_reaps_expired_ones_first,
    lifecycle::touch_keeps_a_sandbox_warm,
    lifecycle::stop_kills_and_removes,
    lifecycle::unknown_sandbox_is_not_found,
    processes::exec_cancel_kills_grandchildren,
    processes::cancel_right_after_start_leaves_nothing,
    processes::exec_timeout_kills_grandchildren,
    processes::tool_run_command_cancel_kills_everything,
    files::refresh_writes_only_what_differs,
    files::a_manifest_compared_in_parts_is_compared_whole,
    files::refresh_refuses_blocked_paths,
    files::seeded_files_land_inside_and_never_through_symlinks,
    files::tools_edit_the_workspace,
    files::snapshot_prunes_generated_directories,
    confinement::confinement_hides_service_and_other_sandboxes,
    boundary::sandboxes_run_as_unprivileged_uids_of_their_own,
    boundary::a_fork_bomb_hits_the_process_limit_while_another_sandbox_works,
    boundary::the_sandboxes_weigh_one_share_per_cpu_against_the_host,
    boundary::memory_past_the_limit_is_killed_and_named,
    boundary::writes_past_the_disk_limit_fail_and_sync_refuses,
    network::a_dev_server_answers_later_commands_of_its_sandbox_only,
);

/// Runs `script` in sandbox `id` (a minute at most) and answers its exit code and output.
pub(crate) async fn run(env: &Env, id: &SandboxId, script: &str) -> (Option<i32>, String) {
    let out = env
        .ctl
        .exec(
            id,
            exec(script, Duration::from_secs(60)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    (out.exit_code, out.output)
}

pub(crate) fn exec(command: &str, timeout: Duration) -> ExecRequest {
    ExecRequest {
        command: command.to_owned(),
        timeout,
        max_output_bytes: 64 * 1024,
        env: Vec::new(),
    }
}
