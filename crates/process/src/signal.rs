//! The blunt instruments: SIGKILL to one process, a group, a whole tree, or everything
//! working under a directory. Every call ignores "already gone".

use std::path::Path;

use crate::procfs::{descendants, pids_under};

/// Sends `signal` to `pid` (positive) or to the group `-pid` (negative).
fn send(pid: i32, signal: libc::c_int) {
    // SAFETY: kill(2) takes two integers and shares no memory with the target.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// A pid as `kill(2)` wants it; 0 and 1 (the caller's group, init) are never targets.
fn target(pid: u32) -> Option<i32> {
    i32::try_from(pid).ok().filter(|p| *p > 1)
}

/// SIGKILLs one process.
pub fn kill_pid(pid: u32) {
    if let Some(pid) = target(pid) {
        send(pid, libc::SIGKILL);
    }
}

/// SIGKILLs a whole process group, e.g. for a command whose leader was already reaped.
pub fn kill_group(pgid: u32) {
    if let Some(pgid) = target(pgid) {
        send(-pgid, libc::SIGKILL);
    }
}

/// Kills the group led by `leader` and every descendant of the leader. A descendant may
/// have left the group (bubblewrap's namespace init runs in a session of its own and only
/// dies with its parent once it armed `PR_SET_PDEATHSIG`; a detached shell): so the group
/// is stopped first (it cannot fork while stopped), the descendants are found by parent pid
/// and killed, and then the group itself.
pub fn kill_tree(leader: u32) {
    let Some(pgid) = target(leader) else {
        return;
    };
    send(-pgid, libc::SIGSTOP);
    for pid in descendants(leader) {
        kill_pid(pid);
    }
    send(-pgid, libc::SIGKILL);
}

/// SIGKILLs every process (but this one) whose working directory lies under `dir`: the net
/// for anything that left its group or was started by an earlier instance of the service.
/// Returns how many it signalled.
pub fn kill_by_cwd(dir: &Path) -> usize {
    let found = pids_under(dir);
    for &pid in &found {
        kill_pid(pid);
    }
    found.len()
}
