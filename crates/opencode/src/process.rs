//! Killing a server with everything it started: its process group and, for children that
//! left the group (a confinement wrapper's new session, a detached shell), every descendant
//! found through `/proc`.

use std::collections::HashMap;

/// Every live descendant of `pid` (children, grandchildren, …), read from `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(parent) = parent_of(child) {
            children.entry(parent).or_default().push(child);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(next) = queue.pop() {
        for child in children.get(&next).into_iter().flatten() {
            if !found.contains(child) {
                found.push(*child);
                queue.push(*child);
            }
        }
    }
    found
}

/// The parent pid from `/proc/<pid>/stat` (the field after the parenthesised name, which may
/// itself contain spaces or parentheses).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` still runs (a zombie, dead but not yet reaped, does not count).
pub fn is_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// SIGKILLs the process group led by `pid` and every descendant of `pid`.
pub fn kill_tree(pid: u32) {
    let tree = descendants(pid);
    let Ok(group) = i32::try_from(pid) else {
        return;
    };
    // SAFETY: plain syscalls on pids this crate spawned (the group was created with
    // `process_group(0)`, so its id is the leader's pid); errors (already gone) are ignored.
    unsafe {
        libc::killpg(group, libc::SIGKILL);
    }
    for child in tree {
        if let Ok(child) = i32::try_from(child) {
            // SAFETY: as above, for descendants found under our own child.
            unsafe {
                libc::kill(child, libc::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finds_and_kills_a_detached_grandchild() {
        use std::os::unix::process::CommandExt;
        // sh starts a grandchild in its own session, which a group kill alone would miss.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "setsid sleep 30 & sleep 30"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut tree = Vec::new();
        for _ in 0..100 {
            tree = descendants(pid);
            if tree.len() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(tree.len() >= 2, "{tree:?}");
        kill_tree(pid);
        child.wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(tree.iter().all(|p| !is_running(*p)), "{tree:?}");
    }
}
