//! The process groups a sandbox has running, and the blunt instruments that end them.

use std::collections::HashSet;
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
            kill_group(pgid);
        }
    }
}

/// SIGKILL to a whole process group; under bubblewrap that takes the PID namespace with it.
pub(crate) fn kill_group(pgid: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is shared.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
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
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == own {
            continue;
        }
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        if cwd.starts_with(dir) {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: kill(2) on one pid; no memory is shared.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                killed += 1;
            }
        }
    }
    killed
}
