//! Runs one prepared command to completion, timeout or cancellation, in its own process
//! group; whatever happens (including the caller dropping the future) the group is killed.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use draftsmith_tools::{CommandOutput, CommandRequest, ToolError};

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::groups::{ProcessGroups, kill_group, kill_tree};
use draftsmith_tools::{TailBuffer, spawn_tail_reader};

/// How long to wait for the pipes to close after the group was killed.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// `PATH` inside a sandbox: system directories only, never the service's own.
const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

/// Kills and forgets the group when dropped, so an abandoned future leaves nothing behind.
struct GroupGuard {
    pgid: Option<i32>,
    groups: ProcessGroups,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            // Dropped before the leader was reaped: its whole tree must go.
            kill_tree(pgid);
            self.groups.remove(pgid);
        }
    }
}

/// Spawns `command` (program, arguments and environment already set) as a group leader and
/// waits for it within `request`'s bounds.
pub(crate) async fn run_in_group(
    mut command: Command,
    request: &CommandRequest,
    cancel: CancellationToken,
    groups: &ProcessGroups,
) -> Result<CommandOutput, ToolError> {
    let started = Instant::now();
    if cancel.is_cancelled() {
        return Ok(ended(started, String::new(), false, true, None));
    }
    // SAFETY: prctl(2) is async-signal-safe and touches no memory of the parent; if this
    // service dies (even by SIGKILL) the command's leader dies with it, and under bubblewrap
    // its PID namespace with that.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ToolError::failed(format!("cannot start the command: {e}")))?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    if let Some(pgid) = pgid {
        groups.insert(pgid);
    }
    let guard = GroupGuard {
        pgid,
        groups: groups.clone(),
    };
    let tail = Arc::new(Mutex::new(TailBuffer::new(request.max_output_bytes)));
    let readers = [
        child
            .stdout
            .take()
            .map(|s| spawn_tail_reader(s, tail.clone())),
        child
            .stderr
            .take()
            .map(|s| spawn_tail_reader(s, tail.clone())),
    ];

    let (mut timed_out, mut cancelled) = (false, false);
    let status = tokio::select! {
        status = child.wait() => Some(status),
        () = tokio::time::sleep(request.timeout) => { timed_out = true; None }
        () = cancel.cancelled() => { cancelled = true; None }
    };
    // Whatever happened, nothing the command started may outlive it.
    if let Some(pgid) = pgid {
        if status.is_some() {
            kill_group(pgid);
        } else {
            kill_tree(pgid);
        }
    }
    let status = match status {
        Some(status) => status,
        None => child.wait().await,
    }
    .map_err(|e| ToolError::failed(format!("cannot wait for the command: {e}")))?;
    // The leader is reaped: from here a plain group kill is all that can still apply.
    let mut guard = guard;
    if let Some(pgid) = guard.pgid.take() {
        kill_group(pgid);
        guard.groups.remove(pgid);
    }
    // Killed by a signal just as the cancel came (stop kills groups directly): a cancel.
    cancelled |= !timed_out && status.code().is_none() && cancel.is_cancelled();

    for reader in readers.into_iter().flatten() {
        let abort = reader.abort_handle();
        if tokio::time::timeout(DRAIN_GRACE, reader).await.is_err() {
            abort.abort();
        }
    }
    // A reader cut off above may still hold a clone, so take the buffer out in place.
    let output = tail
        .lock()
        .map(|mut b| std::mem::replace(&mut *b, TailBuffer::new(0)).finish())
        .unwrap_or_default();
    let code = if timed_out || cancelled {
        None
    } else {
        status.code()
    };
    Ok(ended(started, output, timed_out, cancelled, code))
}

fn ended(
    started: Instant,
    output: String,
    timed_out: bool,
    cancelled: bool,
    exit_code: Option<i32>,
) -> CommandOutput {
    CommandOutput {
        exit_code,
        output,
        timed_out,
        cancelled,
        ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

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

    #[tokio::test]
    async fn reports_exit_code_and_output() {
        let groups = ProcessGroups::default();
        let req = request("echo out; echo err >&2; exit 3", 10_000);
        let out = run_in_group(sh(&req.command), &req, CancellationToken::new(), &groups)
            .await
            .unwrap();
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
        let req = request(&format!("echo \"[${name}]\""), 10_000);
        let out = run_in_group(sh(&req.command), &req, CancellationToken::new(), &groups)
            .await
            .unwrap();
        assert_eq!(out.output.trim(), "[]", "{name} leaked");
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let groups = ProcessGroups::default();
        let req = request("sleep 30 & sleep 30", 200);
        let out = run_in_group(sh(&req.command), &req, CancellationToken::new(), &groups)
            .await
            .unwrap();
        assert!(out.timed_out);
        assert_eq!(out.exit_code, None);
        assert!(out.ms < 5_000, "{}", out.ms);
    }
}
