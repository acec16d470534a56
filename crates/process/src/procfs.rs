//! What `/proc` says about processes: who is whose parent, who still runs, where each one
//! works. Read-only; the signals are in [`crate::signal`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Every pid listed in `/proc` right now (empty where there is no `/proc`).
pub fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// The fields of `/proc/<pid>/stat` after the parenthesised name (which may itself hold
/// spaces or parentheses): state, ppid, pgrp, …
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The parent pid of `pid`, while it exists.
pub fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// Whether `pid` still runs (a zombie, dead but not yet reaped, does not count).
pub fn is_running(pid: u32) -> bool {
    stat_fields(pid)
        .and_then(|fields| fields.into_iter().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

/// Every live descendant of `root` (children, grandchildren, …), found by parent pid, so
/// one that left its process group or session (`setsid`, a double fork whose middle
/// process still runs) is found too.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for pid in pids() {
        if let Some(parent) = parent_of(pid) {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut seen = HashSet::from([root]);
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(next) = stack.pop() {
        for &child in children.get(&next).into_iter().flatten() {
            if seen.insert(child) {
                found.push(child);
                stack.push(child);
            }
        }
    }
    found
}

/// The working directory of `pid`, while it exists and may be read.
pub fn cwd_of(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// Every process other than this one whose working directory lies under `dir`.
pub fn pids_under(dir: &Path) -> Vec<u32> {
    let own = std::process::id();
    pids()
        .into_iter()
        .filter(|&pid| pid != own && cwd_of(pid).is_some_and(|cwd| cwd.starts_with(dir)))
        .collect()
}

/// Every process other than this one whose command line contains `needle`.
pub fn pids_mentioning(needle: &str) -> Vec<u32> {
    let own = std::process::id();
    pids()
        .into_iter()
        .filter(|&pid| pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(needle))
        })
        .collect()
}
