//! The process groups a sandbox has running, and the blunt instruments that end them.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The process groups of one sandbox's running commands; `kill_all` ends every one.
#[derive(Debug, Clone, Default)]
pub struct ProcessGroups(Arc<Mutex<HashSet<i32>>>);

impl ProcessGroups {
    /// Remembers a running group.
    pub(crate) fn insert(&self, pgid: i32) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(pgid);
        }
    }

    /// Forgets a group whose command ended.
    pub(crate) fn remove(&self, pgid: i32) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(&pgid);
        }
    }

    /// How many commands are running, for tests and metrics.
    pub fn len(&self) -> usize {
        self.0.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether no command is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// SIGKILLs every registered group (their commands then reap and unregister themselves).
    pub fn kill_all(&self) {
        let groups: Vec<i32> = self
            .0
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for pgid in groups {
            kill_tree(pgid);
        }
    }
}

/// SIGKILL to a whole process group, for a command that has already ended.
pub(crate) fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Kills a running command's group and every descendant of its leader. Bubblewrap's
/// namespace init runs in a session of its own and only dies with its parent once it has
/// armed `PR_SET_PDEATHSIG`; a cancel right after the start could leave it behind. So the
/// group is frozen first (it cannot fork while stopped), its descendants are found by
/// parent pid and killed, and then the group itself.
pub(crate) fn kill_tree(pgid: i32) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
    unsafe {
        libc::kill(-pgid, libc::SIGSTOP);
    }
    for pid in descendants(pgid) {
        // SAFETY: as above, one pid.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    kill_group(pgid);
}

/// Every live descendant of `root`, from the parent pids in `/proc`.
fn descendants(root: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = parent_of(&entry.path()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            out.push(child);
            stack.push(child);
        }
    }
    out
}

/// The parent pid from `/proc/<pid>/stat` (`pid (comm) state ppid …`; comm may hold spaces).
fn parent_of(proc_dir: &Path) -> Option<i32> {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

/// SIGKILLs every process whose working directory lies under `dir`: the net for anything
/// that left its group (`setsid`) or was started by an earlier instance of the service.
pub(crate) fn kill_by_cwd(dir: &Path) -> usize {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        if let (true, Ok(pid)) = (cwd.starts_with(dir), i32::try_from(pid)) {
            // SAFETY: kill(2) on one pid; no memory is shared.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            killed += 1;
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parent_pid() {
        let own = std::process::id();
        let ppid = parent_of(Path::new(&format!("/proc/{own}")));
        // SAFETY: getppid(2) has no arguments and cannot fail.
        assert_eq!(ppid, Some(unsafe { libc::getppid() }));
    }
}
