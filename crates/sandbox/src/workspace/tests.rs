//! Unit tests of materialisation and snapshot on a plain directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;

use draftsmith_core::BlobHash;
use pretty_assertions::assert_eq;

use super::*;
use crate::controller::{Change, FileEntry};

fn entry(path: &str, content: &[u8]) -> (FileEntry, Vec<u8>) {
    let file = FileEntry {
        path: path.into(),
        sha256: BlobHash::of(content),
        size: content.len() as i64,
    };
    (file, content.to_vec())
}

fn refresh(root: &Path, files: &[(FileEntry, Vec<u8>)], index: &mut FileIndex) -> (usize, usize) {
    let manifest: Vec<FileEntry> = files.iter().map(|(f, _)| f.clone()).collect();
    let blobs: HashMap<BlobHash, Vec<u8>> = files
        .iter()
        .map(|(f, c)| (f.sha256.clone(), c.clone()))
        .collect();
    let plan = plan(root, &manifest, index).unwrap();
    let done = apply(root, &plan, &blobs, index, None).unwrap();
    (done.written, done.removed)
}

#[test]
fn writes_only_what_differs_and_removes_what_went() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut index = FileIndex::load(root.join("../index-a.json"));
    let v1 = vec![
        entry("a.txt", b"a"),
        entry("src/b.js", b"b"),
        entry("src/deep/c.js", b"c"),
    ];
    assert_eq!(refresh(root, &v1, &mut index), (3, 0));
    assert_eq!(refresh(root, &v1, &mut index), (0, 0));
    std::fs::create_dir_all(root.join("node_modules/x")).unwrap();
    std::fs::write(root.join("node_modules/x/i.js"), b"dep").unwrap();
    let v2 = vec![entry("a.txt", b"A"), entry("src/b.js", b"b")];
    assert_eq!(refresh(root, &v2, &mut index), (1, 1));
    assert!(!root.join("src/deep").exists(), "emptied directories go");
    assert_eq!(std::fs::read(root.join("a.txt")).unwrap(), b"A");
    assert!(
        root.join("node_modules/x/i.js").exists(),
        "pruned dirs are never touched"
    );
}

/// The comparison checks the policy only where the workspace differs, so a manifest
/// that spells a path another way, or names one twice, must still come out as the
/// normalised path, written once, and a spelling of a file the workspace holds must
/// neither rewrite nor remove it.
#[test]
fn a_path_spelled_another_way_or_named_twice_is_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut index = FileIndex::default();
    let v1 = vec![entry("a.txt", b"a"), entry("src/b.js", b"b")];
    assert_eq!(refresh(root, &v1, &mut index), (2, 0));
    let respelled = vec![entry("./a.txt", b"a"), entry("src//b.js", b"b")];
    assert_eq!(refresh(root, &respelled, &mut index), (0, 0));
    let twice = vec![
        entry("a.txt", b"a"),
        entry("src/b.js", b"old"),
        entry("./src/b.js", b"new"),
    ];
    assert_eq!(refresh(root, &twice, &mut index), (1, 0));
    assert_eq!(std::fs::read(root.join("src/b.js")).unwrap(), b"new");
    let names: Vec<_> = std::fs::read_dir(root.join("src"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["b.js"]);
    // Named by neither spelling, the file goes; the next comparison starts afresh.
    assert_eq!(refresh(root, &[entry("./a.txt", b"a")], &mut index), (0, 1));
    assert!(!root.join("src").exists());
    assert_eq!(refresh(root, &[], &mut index), (0, 1));
    assert_eq!(std::fs::read_dir(root).unwrap().count(), 0);
}

#[test]
fn a_file_changed_behind_the_index_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut index = FileIndex::default();
    let v1 = vec![entry("a.txt", b"one")];
    refresh(root, &v1, &mut index);
    std::fs::write(root.join("a.txt"), b"two, longer").unwrap();
    assert_eq!(refresh(root, &v1, &mut index), (1, 0));
    assert_eq!(std::fs::read(root.join("a.txt")).unwrap(), b"one");
}

#[test]
fn symlinks_on_the_way_are_replaced_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::os::unix::fs::symlink(outside.path(), root.join("src")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("t"), root.join("top.txt")).unwrap();
    let mut index = FileIndex::default();
    refresh(
        root,
        &[entry("src/x.js", b"x"), entry("top.txt", b"t")],
        &mut index,
    );
    assert!(root.join("src").symlink_metadata().unwrap().is_dir());
    assert!(
        !root
            .join("top.txt")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn manifests_with_blocked_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut index = FileIndex::default();
    for bad in ["../x", "node_modules/a.js", "/etc/passwd", "a.tsbuildinfo"] {
        let (file, _) = entry(bad, b"x");
        let err = plan(dir.path(), &[file], &mut index).unwrap_err();
        assert!(
            matches!(err, crate::SandboxError::PathBlocked { .. }),
            "{bad}"
        );
    }
}

#[test]
fn snapshot_lists_changes_and_never_generated_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut index = FileIndex::default();
    let base = vec![
        entry("a.txt", b"a"),
        entry("gone.txt", b"g"),
        entry("same.txt", b"s"),
    ];
    refresh(root, &base, &mut index);
    std::fs::write(root.join("a.txt"), b"b").unwrap();
    std::fs::remove_file(root.join("gone.txt")).unwrap();
    std::fs::create_dir_all(root.join("dist/assets")).unwrap();
    std::fs::write(root.join("dist/assets/x.js"), b"built").unwrap();
    std::fs::write(root.join("app.tsbuildinfo"), b"{}").unwrap();
    std::fs::write(root.join(".eslintcache"), b"{}").unwrap();
    std::fs::create_dir_all(root.join(".opencode/tools")).unwrap();
    std::fs::write(root.join(".opencode/tools/t.ts"), b"t").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
    let manifest: Vec<FileEntry> = base.iter().map(|(f, _)| f.clone()).collect();
    let changes = snapshot(root, &manifest, &mut index, 0).unwrap();
    assert_eq!(
        changes,
        vec![
            Change {
                path: draft_path(".opencode/tools/t.ts"),
                content: Some(b"t".to_vec())
            },
            Change {
                path: draft_path("a.txt"),
                content: Some(b"b".to_vec())
            },
            Change {
                path: draft_path("gone.txt"),
                content: None
            },
        ]
    );
}

#[test]
fn snapshot_does_not_trust_a_stamp_from_the_same_tick() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut index = FileIndex::default();
    let base = vec![entry("a.txt", b"aaaa")];
    refresh(root, &base, &mut index);
    // Same size, written right after the refresh recorded it: possibly the same mtime.
    std::fs::write(root.join("a.txt"), b"bbbb").unwrap();
    let manifest: Vec<FileEntry> = base.iter().map(|(f, _)| f.clone()).collect();
    let changes = snapshot(root, &manifest, &mut index, 0).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].content.as_deref(), Some(&b"bbbb"[..]));
}

#[test]
fn the_index_survives_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir(&root).unwrap();
    let file = dir.path().join("index.json");
    let mut index = FileIndex::load(file.clone());
    refresh(&root, &[entry("a.txt", b"a")], &mut index);
    index.save().unwrap();
    let mut again = FileIndex::load(file);
    assert_eq!(refresh(&root, &[entry("a.txt", b"a")], &mut again), (0, 0));
}

#[test]
fn the_index_is_written_only_when_it_changed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    std::fs::create_dir(&root).unwrap();
    let file = dir.path().join("index.json");
    let files = [entry("a.txt", b"a"), entry("b.txt", b"b")];
    let mut index = FileIndex::load(file.clone());
    index.save().unwrap();
    assert!(!file.exists(), "nothing to persist yet");
    refresh(&root, &files, &mut index);
    index.save().unwrap();
    assert!(file.exists());
    // Saved and unchanged (a refresh with nothing to do): the file is not written again.
    let mut again = FileIndex::load(file.clone());
    std::fs::remove_file(&file).unwrap();
    assert_eq!(refresh(&root, &files, &mut again), (0, 0));
    again.save().unwrap();
    assert!(!file.exists(), "an unchanged index was rewritten");
    // A removal changes it.
    assert_eq!(refresh(&root, &files[..1], &mut again), (0, 1));
    again.save().unwrap();
    let mut reloaded = FileIndex::load(file);
    assert_eq!(refresh(&root, &files[..1], &mut reloaded), (0, 0));
}

fn draft_path(raw: &str) -> draftsmith_core::DraftPath {
    draftsmith_core::DraftPath::parse(raw).unwrap()
}

/// A sandboxed process swapping a workspace directory for a link to a host directory while
/// the service snapshots (or builds output from) the workspace: no host file's content ever
/// reaches a change.
#[test]
fn a_directory_swapped_for_a_link_never_brings_host_files_into_a_snapshot() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let base = tempfile::tempdir().unwrap();
    let (root, outside) = (base.path().join("ws"), base.path().join("host"));
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(root.join("a/mine.txt"), "mine").unwrap();
    std::fs::write(outside.join("secret.txt"), "host secret").unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let hostile = {
        let (real, parked, outside, stop) = (
            root.join("a"),
            root.join("a.real"),
            outside.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            let mut hold = 0u64;
            while !stop.load(Ordering::Relaxed) {
                hold = (hold + 7) % 50;
                let _ = std::fs::rename(&real, &parked);
                let _ = std::os::unix::fs::symlink(&outside, &real);
                std::thread::sleep(std::time::Duration::from_micros(hold));
                let _ = std::fs::remove_file(&real);
                let _ = std::fs::rename(&parked, &real);
                std::thread::sleep(std::time::Duration::from_micros(50 - hold));
            }
        })
    };
    let mut leaked = Vec::new();
    for round in 0..300 {
        let mut index = FileIndex::load(base.path().join(format!("index-{round}.json")));
        for change in snapshot(&root, &[], &mut index, 0).unwrap() {
            if change.content.as_deref() == Some(b"host secret".as_slice()) {
                leaked.push(change.path.as_str().to_owned());
            }
        }
        for (rel, bytes) in super::output::read(&root, "a", 1 << 20).unwrap_or_default() {
            if bytes == b"host secret" {
                leaked.push(format!("output {rel}"));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    hostile.join().unwrap();
    assert_eq!(leaked, Vec::<String>::new());
}

/// The files a fresh index finds by walking `root`, with their content.
fn walked(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut fresh = FileIndex::default();
    let present = fresh.scan(root, false).unwrap();
    present
        .into_keys()
        .map(|rel| {
            let content = std::fs::read(root.join(&rel)).unwrap();
            (rel, content)
        })
        .collect()
}

fn as_found(files: &[(FileEntry, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(f, c)| (f.path.clone(), c.clone()))
        .collect();
    found.sort();
    found
}

#[test]
fn after_a_walk_a_refresh_looks_only_at_the_files_events_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut index = FileIndex::default();
    let mut v1: Vec<(FileEntry, Vec<u8>)> = (0..30)
        .map(|i| {
            entry(
                &format!("src/d{}/f{i}.js", i % 3),
                format!("v{i}").as_bytes(),
            )
        })
        .collect();
    refresh(root, &v1, &mut index);
    assert_eq!(index.last_look(), Looked::Walked, "the first look walks");
    // The directories it made are news to the watches: the next look walks again.
    assert_eq!(refresh(root, &v1, &mut index), (0, 0));
    assert_eq!(index.last_look(), Looked::Walked);
    assert_eq!(refresh(root, &v1, &mut index), (0, 0));
    assert_eq!(index.last_look(), Looked::Noticed(0));
    // Files rewritten in place are named in events, and nothing else is looked at.
    for i in [3, 4] {
        std::fs::write(root.join(&v1[i].0.path), b"other").unwrap();
    }
    assert_eq!(refresh(root, &v1, &mut index), (2, 0));
    assert_eq!(index.last_look(), Looked::Noticed(2));
    assert_eq!(refresh(root, &v1, &mut index), (0, 0));
    assert_eq!(index.last_look(), Looked::Noticed(2), "its own two writes");

    // One file of the draft changed: the refresh writes it and looks at nothing else.
    v1[7] = entry("src/d1/f7.js", b"changed");
    assert_eq!(refresh(root, &v1, &mut index), (1, 0));
    assert_eq!(index.last_look(), Looked::Noticed(0));
    assert_eq!(walked(root), as_found(&v1));
}

#[test]
fn every_change_behind_the_index_is_undone_with_or_without_a_walk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut index = FileIndex::default();
    let files = vec![
        entry("a.txt", b"same size"),
        entry("src/b.js", b"b"),
        entry("src/c.js", b"c"),
        entry("src/deep/d.js", b"d"),
    ];
    refresh(root, &files, &mut index);
    refresh(root, &files, &mut index);
    let write = |rel: &str, content: &[u8]| std::fs::write(root.join(rel), content).unwrap();
    type Step<'a> = (&'a str, Box<dyn Fn() + 'a>, Option<Looked>);
    let steps: Vec<Step<'_>> = vec![
        // Same size, written within the same tick as the refresh's own stamp.
        (
            "content",
            Box::new(|| write("a.txt", b"SAME SIZE")),
            Some(Looked::Noticed(1)),
        ),
        (
            "removal",
            Box::new(|| std::fs::remove_file(root.join("src/b.js")).unwrap()),
            Some(Looked::Noticed(1)),
        ),
        (
            "a new file",
            Box::new(|| write("src/new.js", b"n")),
            Some(Looked::Noticed(1)),
        ),
        (
            "a rename over a file",
            Box::new(|| std::fs::rename(root.join("src/c.js"), root.join("src/b.js")).unwrap()),
            Some(Looked::Noticed(2)),
        ),
        (
            "a hard link",
            Box::new(|| std::fs::hard_link(root.join("a.txt"), root.join("src/l.txt")).unwrap()),
            // The link count's change may be reported on the linked file too.
            None,
        ),
        (
            "more events than the kernel queues",
            Box::new(|| {
                use std::io::Write;
                let open = |rel: &str| {
                    std::fs::OpenOptions::new()
                        .append(true)
                        .open(root.join(rel))
                        .unwrap()
                };
                let (mut a, mut b) = (open("a.txt"), open("src/b.js"));
                // Alternating, so no two events in a row are the same and merged.
                for _ in 0..20_000 {
                    a.write_all(b"a").unwrap();
                    b.write_all(b"b").unwrap();
                }
            }),
            Some(Looked::Walked),
        ),
        (
            "a link in a file's place",
            Box::new(|| {
                std::fs::remove_file(root.join("src/c.js")).unwrap();
                std::os::unix::fs::symlink("/etc/passwd", root.join("src/c.js")).unwrap();
            }),
            Some(Looked::Noticed(1)),
        ),
        (
            "a pruned directory",
            Box::new(|| {
                std::fs::create_dir_all(root.join("node_modules/x")).unwrap();
                write("node_modules/x/i.js", b"dep");
            }),
            Some(Looked::Noticed(0)),
        ),
        (
            "a new directory",
            Box::new(|| {
                std::fs::create_dir(root.join("src/fresh")).unwrap();
                write("src/fresh/x.js", b"x");
            }),
            Some(Looked::Walked),
        ),
        (
            "a directory moved away",
            Box::new(|| std::fs::rename(root.join("src/deep"), root.join("moved")).unwrap()),
            Some(Looked::Walked),
        ),
        (
            "a directory removed",
            Box::new(|| std::fs::remove_dir_all(root.join("src")).unwrap()),
            Some(Looked::Walked),
        ),
    ];
    for (what, change, looked) in steps {
        change();
        refresh(root, &files, &mut index);
        assert_eq!(walked(root), as_found(&files), "after {what}");
        if let Some(looked) = looked {
            assert_eq!(index.last_look(), looked, "{what}");
        }
        // The refresh's own writes are looked at once more, then nothing is.
        refresh(root, &files, &mut index);
        refresh(root, &files, &mut index);
        assert_eq!(
            index.last_look(),
            Looked::Noticed(0),
            "settled after {what}"
        );
    }
}

#[test]
fn a_snapshot_walks_and_catches_what_no_event_named() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut index = FileIndex::default();
    let base = vec![entry("src/a.js", b"aaaa")];
    refresh(root, &base, &mut index);
    refresh(root, &base, &mut index);
    // A write through a hard link in a directory nobody watches raises no event there.
    std::fs::create_dir(root.join("node_modules")).unwrap();
    std::fs::hard_link(root.join("src/a.js"), root.join("node_modules/a.js")).unwrap();
    refresh(root, &base, &mut index);
    std::fs::write(root.join("node_modules/a.js"), b"bbbbb").unwrap();
    let manifest: Vec<FileEntry> = base.iter().map(|(f, _)| f.clone()).collect();
    let changes = snapshot(root, &manifest, &mut index, 0).unwrap();
    assert_eq!(index.last_look(), Looked::Walked);
    assert_eq!(
        changes,
        vec![Change {
            path: draft_path("src/a.js"),
            content: Some(b"bbbbb".to_vec())
        }]
    );
}
