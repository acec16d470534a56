//! The supervisor: runs one prepared command to completion, timeout or cancellation, as
//! the leader of its own process group; whatever happens (including the caller dropping
//! the future) the group and every descendant are killed, and the output's tail is kept.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::child::ChildSetup;
use crate::groups::ProcessGroups;
use crate::signal::{kill_group, kill_tree};
use crate::tail::Capture;

/// How long a command may run and how much of its output is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Longest the command may run before its tree is killed.
    pub timeout: Duration,
    /// Most bytes of combined output kept (the tail).
    pub max_output_bytes: usize,
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

/// Why a command could not be run or waited for (a command that fails is an output).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The spawn failed (missing program, a failed [`ChildSetup`] step); not worth a retry.
    #[error("cannot start the command: {0}")]
    Spawn(#[source] std::io::Error),
    /// Waiting for the leader failed.
    #[error("cannot wait for the command: {0}")]
    Wait(#[source] std::io::Error),
}

/// Kills the tree and forgets the group when dropped before the leader was reaped, so an
/// abandoned future leaves nothing behind.
struct GroupGuard {
    pgid: Option<u32>,
    groups: ProcessGroups,
}

impl GroupGuard {
    /// The leader is reaped: only a plain group kill can still apply.
    fn release(mut self) {
        if let Some(pgid) = self.pgid.take() {
            kill_group(pgid);
            self.groups.remove(pgid);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            kill_tree(pgid);
            self.groups.remove(pgid);
        }
    }
}

/// Spawns `command` (program, arguments, directory, environment and any [`ChildSetup`]
/// already set) as a group leader that dies with this service, registers the group in
/// `groups` while it runs, and waits for it within `bounds` or until `cancel`.
pub async fn run(
    mut command: Command,
    bounds: Bounds,
    cancel: CancellationToken,
    groups: &ProcessGroups,
) -> Result<CommandOutput, RunError> {
    let started = Instant::now();
    if cancel.is_cancelled() {
        return Ok(ended(started, String::new(), (false, true), None));
    }
    ChildSetup::dying_with_parent().install(&mut command);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(RunError::Spawn)?;
    let pgid = child.id();
    if let Some(pgid) = pgid {
        groups.insert(pgid);
    }
    let guard = GroupGuard {
        pgid,
        groups: groups.clone(),
    };
    let capture = Capture::start(&mut child, bounds.max_output_bytes);

    let (mut timed_out, mut cancelled) = (false, false);
    let status = tokio::select! {
        status = child.wait() => Some(status),
        () = tokio::time::sleep(bounds.timeout) => { timed_out = true; None }
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
    .map_err(RunError::Wait)?;
    guard.release();
    // Killed by a signal just as the cancel came (a stop kills groups directly): a cancel.
    cancelled |= !timed_out && status.code().is_none() && cancel.is_cancelled();

    let output = capture.finish().await;
    let code = (!timed_out && !cancelled).then(|| status.code()).flatten();
    Ok(ended(started, output, (timed_out, cancelled), code))
}

fn ended(
    started: Instant,
    output: String,
    (timed_out, cancelled): (bool, bool),
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
