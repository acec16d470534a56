//! Issue: taking a checkpoint and restoring one on a 5,000-file draft, against
//! `git add -A && git commit` and `git checkout` of the same tree in the same run; then
//! restores back to back, each to the checkpoint two revisions back, for their median and
//! their tail (what a write queued behind the database's own housekeeping waits).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use draftsmith_core::{DraftPath, UserId};
use draftsmith_store::prelude::*;
use draftsmith_store::{FileChange, NewApp, NewCheckpoint, SqlStore};
use draftsmith_testkit::{StoreKind, TestDb};

use crate::report::{line, wait_for_quiet};

const FILES: usize = 5_000;
const RUNS: usize = 5;
/// Restores timed back to back.
const BACK_TO_BACK: usize = 300;

pub async fn run() -> anyhow::Result<()> {
    println!("== checkpoints: checkpoint and restore of a {FILES}-file draft vs git ==");
    wait_for_quiet().await;
    let (git_commit, git_checkout) = git_baseline()?;
    for kind in [StoreKind::Sqlite, StoreKind::Postgres] {
        let db = TestDb::new(kind).await;
        let store = SqlStore::connect(&db.url).await?;
        let files = (0..FILES)
            .map(|i| Ok((DraftPath::parse(&path(i))?, content(i, 0))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let app = store
            .create_app(NewApp {
                name: "bench".into(),
                slug: "bench".into(),
                template: "static".into(),
                owner: UserId("bench".into()),
                files,
            })
            .await?;
        let by = UserId("bench".into());
        let first = store
            .create_checkpoint(NewCheckpoint::manual(app.id, 1, "first", by.clone()))
            .await?;
        settle()?;
        let mut take = Vec::new();
        let mut restore = Vec::new();
        for round in 0..RUNS {
            // Change 50 files, then checkpoint, then restore the first revision.
            let changes = fifty_changed(round + 1)?;
            let written = store.write_draft(app.id, None, changes, &by).await?;
            let clock = Instant::now();
            store
                .create_checkpoint(NewCheckpoint::manual(
                    app.id,
                    written.revision,
                    "bench",
                    by.clone(),
                ))
                .await?;
            take.push(clock.elapsed());
            let clock = Instant::now();
            store.restore_to(&first, &by, "bench").await?;
            restore.push(clock.elapsed());
        }
        take.sort();
        restore.sort();
        println!("-- {kind:?}");
        line(
            "take a checkpoint (50 files changed)",
            take[RUNS / 2],
            "git add -A && git commit",
            git_commit,
        );
        line(
            "restore a checkpoint (50 files differ)",
            restore[RUNS / 2],
            "git checkout <commit> -- .",
            git_checkout,
        );
        let times = back_to_back(&store, app.id, &by).await?;
        let median = times[times.len() / 2];
        line(
            &format!("{BACK_TO_BACK} restores back to back, median"),
            median,
            "git checkout <commit> -- .",
            git_checkout,
        );
        line(
            &format!("{BACK_TO_BACK} restores back to back, 97th percentile"),
            times[times.len() * 97 / 100],
            "their median",
            median,
        );
        store.close().await;
    }
    Ok(())
}

/// [`BACK_TO_BACK`] restore times, sorted: each restore goes to the checkpoint taken two
/// revisions back (50 files differ), and a checkpoint of what it made is taken untimed.
async fn back_to_back(
    store: &SqlStore,
    app: draftsmith_core::AppId,
    by: &UserId,
) -> anyhow::Result<Vec<std::time::Duration>> {
    let checkpoint =
        |revision: i64| NewCheckpoint::manual(app, revision, "back to back", by.clone());
    let current = store.app(app).await?.draft_revision;
    let mut older = store.create_checkpoint(checkpoint(current)).await?;
    let written = store
        .write_draft(app, None, fifty_changed(RUNS + 1)?, by)
        .await?;
    let mut newer = store
        .create_checkpoint(checkpoint(written.revision))
        .await?;
    let mut times = Vec::with_capacity(BACK_TO_BACK);
    for _ in 0..BACK_TO_BACK {
        let clock = Instant::now();
        let (restored, _) = store.restore_to(&older, by, "bench").await?;
        times.push(clock.elapsed());
        if restored.changes.modified.len() != 50 {
            bail!("a back-to-back restore changed {:?}", restored.changes);
        }
        older = newer;
        newer = store
            .create_checkpoint(checkpoint(restored.revision))
            .await?;
    }
    times.sort();
    Ok(times)
}

/// The 50 files every round changes, spread over the draft, at `version`.
fn fifty_changed(version: usize) -> anyhow::Result<Vec<FileChange>> {
    (0..50)
        .map(|i| {
            Ok(FileChange {
                path: DraftPath::parse(&path(i * 97 % FILES))?,
                content: Some(content(i, version)),
            })
        })
        .collect()
}

fn path(i: usize) -> String {
    format!("src/d{:02}/f{i:05}.js", i % 50)
}

fn content(i: usize, version: usize) -> Vec<u8> {
    let mut text = format!("// file {i} version {version}\n").into_bytes();
    text.resize(600, b'x');
    text
}

/// Median times of committing 50 changed files and checking the first commit out again,
/// on the same tree in a throwaway git repository.
fn git_baseline() -> anyhow::Result<(std::time::Duration, std::time::Duration)> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    for i in 0..FILES {
        let file = root.join(path(i));
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, content(i, 0))?;
    }
    git(root, &["init", "-q"])?;
    git(root, &["add", "-A"])?;
    git(
        root,
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@local",
            "commit",
            "-qm",
            "first",
        ],
    )?;
    settle()?;
    let mut commits = Vec::new();
    let mut checkouts = Vec::new();
    for round in 0..RUNS {
        for i in 0..50 {
            std::fs::write(root.join(path(i * 97 % FILES)), content(i, round + 1))?;
        }
        let clock = Instant::now();
        git(root, &["add", "-A"])?;
        git(
            root,
            &[
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@local",
                "commit",
                "-qm",
                "round",
            ],
        )?;
        commits.push(clock.elapsed());
        let clock = Instant::now();
        git(root, &["checkout", "-q", "HEAD~1", "--", "."])?;
        checkouts.push(clock.elapsed());
        git(
            root,
            &[
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@local",
                "commit",
                "-qam",
                "restore",
            ],
        )?;
    }
    commits.sort();
    checkouts.sort();
    Ok((commits[RUNS / 2], checkouts[RUNS / 2]))
}

/// Writes the set-up's dirty pages out before anything is timed, so neither side's rounds
/// wait for the write-back of the 5,000 files it just made (which slowed whichever set-up
/// finished sooner, its rounds starting while the write-back ran).
fn settle() -> anyhow::Result<()> {
    let status = Command::new("sync").status().context("running sync")?;
    if !status.success() {
        bail!("sync failed");
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .context("running git")?;
    if !status.success() {
        bail!("git {args:?} failed");
    }
    Ok(())
}
