//! Runs one prepared command through the process supervisor, in its own process group
//! registered with the sandbox's [`ProcessGroups`], with the environment a sandboxed
//! command starts with.

use std::path::Path;

use draftsmith_process::ProcessGroups;
use draftsmith_tools::{CommandOutput, CommandRequest, ToolError};

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// `PATH` inside a sandbox: system directories only, never the service's own.
pub const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The whole environment a sandboxed command starts with: the service's (API keys, tokens)
/// is never inherited.
pub(crate) fn base_env(home: &Path) -> Vec<(String, String)> {
    vec![
        ("PATH".into(), SANDBOX_PATH.into()),
        ("HOME".into(), home.to_string_lossy().into_owned()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TERM".into(), "dumb".into()),
    ]
}

/// Spawns `command` (program, arguments and environment already set) as a group leader and
/// waits for it within `request`'s bounds; whatever happens (including the caller dropping
/// the future) the group and its tree are killed.
pub(crate) async fn run_in_group(
    command: Command,
    request: &CommandRequest,
    cancel: CancellationToken,
    groups: &ProcessGroups,
) -> Result<CommandOutput, ToolError> {
    draftsmith_process::run(command, request.bounds(), cancel, groups)
        .await
        .map_err(|e| ToolError::failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::time::Duration;

    fn request(command: &str, timeout_ms: u64) -> CommandRequest {
        CommandRequest {
            command: command.into(),
            cwd: std::env::temp_dir(),
            timeout: Duration::from_millis(timeout_ms),
            max_output_bytes: 1024,
            env: Vec::new(),
        }
    }

    fn sh(command: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(command)
            .env_clear()
            .envs(base_env(Path::new("/tmp")));
        c
    }

    async fn run_sh(text: &str, timeout_ms: u64, groups: &ProcessGroups) -> CommandOutput {
        let req = request(text, timeout_ms);
        run_in_group(sh(&req.command), &req, CancellationToken::new(), groups)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn reports_exit_code_and_output() {
        let groups = ProcessGroups::default();
        let out = run_sh("echo out; echo err >&2; exit 3", 10_000, &groups).await;
        assert_eq!(out.exit_code, Some(3));
        assert!(out.output.contains("out") && out.output.contains("err"));
        assert!(groups.is_empty());
    }

    #[tokio::test]
    async fn environment_is_not_inherited() {
        let groups = ProcessGroups::default();
        let ours = ["PATH", "HOME", "LANG", "TERM"];
        let (name, _) = std::env::vars()
            .find(|(k, v)| {
                !ours.contains(&k.as_str())
                    && !v.is_empty()
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .expect("the test process has some environment");
        let out = run_sh(&format!("echo \"[${name}]\""), 10_000, &groups).await;
        assert_eq!(out.output.trim(), "[]", "{name} leaked");
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let groups = ProcessGroups::default();
        // A duration no other test uses marks this test's two sleeps.
        let mark = format!("30.{}", std::process::id());
        let out = run_sh(&format!("sleep {mark} & sleep {mark}"), 200, &groups).await;
        assert!(out.timed_out);
        assert_eq!(out.exit_code, None);
        let left: Vec<u32> = draftsmith_process::pids_mentioning(&format!("sleep {mark}"))
            .into_iter()
            .filter(|pid| draftsmith_process::is_running(*pid))
            .collect();
        assert!(left.is_empty(), "the timeout left {left:?} running");
        assert!(groups.is_empty());
    }
}
