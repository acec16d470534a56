//! The `/proc` walk and the kills: a grandchild that left the group is still found.

use std::process::Stdio;

use draftsmith_process::{
    descendants, is_running, kill_by_cwd, kill_tree, parent_of, pids_mentioning, pids_under,
};

use crate::support::{all_gone, eventually, marked};

fn spawn_group(text: &str) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    std::process::Command::new("sh")
        .args(["-c", text])
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

#[test]
fn reads_the_parent_pid() {
    let own = std::process::id();
    let parent = std::os::unix::process::parent_id();
    assert_eq!(parent_of(own), Some(parent));
    assert!(is_running(own));
}

#[tokio::test]
async fn finds_and_kills_a_detached_grandchild() {
    let (mark, _leftovers) = marked();
    // sh starts a grandchild in its own session, which a group kill alone would miss.
    let mut child = spawn_group(&format!("setsid sleep {mark} & sleep {mark}.5"));
    let pid = child.id();
    assert!(eventually(|| descendants(pid).len() >= 2).await);
    let tree = descendants(pid);
    let detached: Vec<u32> = pids_mentioning(&mark)
        .into_iter()
        .filter(|p| *p != pid)
        .collect();
    assert!(detached.len() >= 2, "{detached:?}");
    assert!(
        detached.iter().all(|p| tree.contains(p)),
        "{tree:?} {detached:?}"
    );
    kill_tree(pid);
    child.wait().unwrap();
    assert!(eventually(|| all_gone(&tree)).await, "{tree:?}");
}

#[tokio::test]
async fn an_orphan_is_caught_by_its_working_directory() {
    let (mark, _leftovers) = marked();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().canonicalize().unwrap();
    // A double fork: the middle shell exits, so the sleep is re-parented away from us.
    let text = format!(
        "cd '{}' && (setsid sleep {mark} &) ; exit 0",
        work.display()
    );
    let mut child = spawn_group(&text);
    child.wait().unwrap();
    // The middle shell's forks carry the script (and so the mark) until they exit or
    // exec: wait until the only process left mentioning it is the sleep in `work`, its
    // `setsid` already replaced by `sleep` (a command line read during that exec reads
    // empty, so the orphan is taken from the check that saw it settled).
    let mut orphan = Vec::new();
    let settled = || {
        let mentioning = pids_mentioning(&mark);
        let sleeping = mentioning.iter().all(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|l| l.starts_with(b"sleep\0"))
        });
        let only = !mentioning.is_empty() && sleeping && pids_under(&work) == mentioning;
        if only {
            orphan = mentioning;
        }
        only
    };
    assert!(
        eventually(settled).await,
        "{:?} {:?}",
        pids_mentioning(&mark),
        pids_under(&work)
    );
    assert!(descendants(child.id()).is_empty());
    assert_eq!(kill_by_cwd(&work), orphan.len());
    assert!(eventually(|| all_gone(&orphan)).await, "{orphan:?}");
}
