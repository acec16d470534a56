//! The default runner: `sh -c` in its own process group, so a timeout or a cancel kills the
//! command and everything it started, grandchildren included.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{CommandOutput, CommandRequest, CommandRunner, TailBuffer, spawn_tail_reader};
use crate::error::ToolError;

/// How long to wait for the pipes to close after the group was killed.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

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
        let started = Instant::now();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&request.command)
            .current_dir(&request.cwd)
            .envs(request.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ToolError::failed(format!("cannot start sh: {e}")))?;
        let pgid = child.id().and_then(|id| i32::try_from(id).ok());
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
        kill_group(pgid);
        let status = match status {
            Some(status) => status,
            None => {
                // The group kill above normally did it; this covers a shell that left its group.
                let _ = child.start_kill();
                child.wait().await
            }
        }
        .map_err(|e| ToolError::failed(format!("cannot wait for the command: {e}")))?;
        kill_group(pgid);

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
        Ok(CommandOutput {
            exit_code: if timed_out || cancelled {
                None
            } else {
                status.code()
            },
            output,
            timed_out,
            cancelled,
            ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// SIGKILL to the whole process group led by the command's shell.
fn kill_group(pgid: Option<i32>) {
    if let Some(pgid) = pgid.filter(|p| *p > 1) {
        // SAFETY: kill(2) with a negative pid only signals that process group; no memory involved.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}
