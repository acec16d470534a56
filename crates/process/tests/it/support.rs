//! Helpers: a `sh -c` command, bounds, and polling for processes to go.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use draftsmith_process::{
    Bounds, CommandOutput, ProcessGroups, RunError, is_running, kill_pid, pids_mentioning, run,
};
use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// `sh -c text` with a minimal environment.
pub fn sh(text: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(text)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin");
    command
}

/// A timeout and a 1 KiB tail.
pub fn bounds(timeout_ms: u64) -> Bounds {
    Bounds {
        timeout: Duration::from_millis(timeout_ms),
        max_output_bytes: 1024,
    }
}

/// A number no other process's command line contains, to find a test's processes: unique
/// per call within this process, and unlikely to appear elsewhere.
pub fn marker() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 100;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let base = 30_000 + (nanos ^ std::process::id()) % 60_000;
    format!("{base}{n:02}")
}

/// Polls until `check` holds or 10 s passed; returns whether it held.
pub async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// Whether none of `pids` runs any more.
pub fn all_gone(pids: &[u32]) -> bool {
    pids.iter().all(|pid| !is_running(*pid))
}

/// A fresh marker, and what kills its processes once the test is over.
pub fn marked() -> (String, Leftovers) {
    let mark = marker();
    (mark.clone(), Leftovers(mark))
}

/// Kills whatever still mentions the marker when dropped, so a failing test leaves nothing.
pub struct Leftovers(pub String);

impl Drop for Leftovers {
    fn drop(&mut self) {
        pids_mentioning(&self.0).into_iter().for_each(kill_pid);
    }
}

/// Runs `command` to its end within `timeout_ms`, with nobody else watching its group.
pub async fn run_alone(command: Command, timeout_ms: u64) -> Result<CommandOutput, RunError> {
    run(
        command,
        bounds(timeout_ms),
        CancellationToken::new(),
        &ProcessGroups::default(),
    )
    .await
}

/// `sh -c text` under the supervisor on a task of its own (a minute at most), its group
/// registered in `groups`.
pub fn start(
    text: String,
    groups: &ProcessGroups,
    cancel: &CancellationToken,
) -> JoinHandle<Result<CommandOutput, RunError>> {
    let (groups, cancel) = (groups.clone(), cancel.clone());
    tokio::spawn(async move { run(sh(&text), bounds(60_000), cancel, &groups).await })
}
