//! A set of running process groups that can all be killed at once (a sandbox's stop).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::signal::kill_tree;

/// The process groups of one owner's running commands; `kill_all` ends every one. Clones
/// share the set.
#[derive(Debug, Clone, Default)]
pub struct ProcessGroups(Arc<Mutex<HashSet<u32>>>);

impl ProcessGroups {
    /// Remembers a running group.
    pub(crate) fn insert(&self, pgid: u32) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(pgid);
        }
    }

    /// Forgets a group whose command ended.
    pub(crate) fn remove(&self, pgid: u32) {
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

    /// Kills every registered group with its tree (their commands then reap and unregister
    /// themselves).
    pub fn kill_all(&self) {
        let groups: Vec<u32> = self
            .0
            .lock()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for pgid in groups {
            kill_tree(pgid);
        }
    }
}
