//! Issue: writing revision N+1 of a large draft when one file (or fifty) changes must cost
//! what changed, not what the draft holds. Measured against the store on SQLite and
//! PostgreSQL; the baseline is writing the whole draft once, and for growth the same edit
//! on the smallest draft.

use draftsmith_core::{DraftPath, UserId};
use draftsmith_store::prelude::*;
use draftsmith_store::{FileChange, NewApp, SqlStore};
use draftsmith_testkit::{StoreKind, TestDb};

use crate::report::{line, median};

const RUNS: usize = 15;

pub async fn run() -> anyhow::Result<()> {
    println!("== drafts: cost of revision N+1 when one file (or fifty) changes ==");
    for kind in [StoreKind::Sqlite, StoreKind::Postgres] {
        let db = TestDb::new(kind).await;
        let store = SqlStore::connect(&db.url).await?;
        println!("-- {kind:?}");
        let mut small_edit = Vec::new();
        let mut fifty_edit = Vec::new();
        for files in [200usize, 2_000, 20_000] {
            let app = create(&store, files).await?;
            let full = median(3, |_| async {
                create(&store, files).await?;
                Ok(())
            })
            .await?;
            let one =
                median(RUNS, |i| {
                    let store = &store;
                    async move {
                        edit(store, app, &[format!("src/f{:05}.js", i % files)], 1_024, i).await
                    }
                })
                .await?;
            // Enough rounds that PostgreSQL caches the statements' generic plans.
            let fifty = median(RUNS, |i| {
                let store = &store;
                let paths: Vec<String> = (0..50)
                    .map(|k| format!("src/f{:05}.js", (k * 97 + i) % files))
                    .collect();
                async move { edit(store, app, &paths, 1_024, i).await }
            })
            .await?;
            line(
                &format!("revision N+1, 1 KiB file changed, {files} files"),
                one,
                &format!("writing all {files} files"),
                full,
            );
            small_edit.push((files, one));
            fifty_edit.push((files, fifty));
            if files == 2_000 {
                let big = median(RUNS, |i| {
                    let store = &store;
                    async move { edit(store, app, &["src/f00001.js".into()], 1 << 20, i).await }
                })
                .await?;
                line(
                    "revision N+1, 1 MiB file changed, 2000 files",
                    big,
                    "1 KiB file changed",
                    one,
                );
            }
        }
        for (edited, times) in [("1 KiB", &small_edit), ("50 × 1 KiB", &fifty_edit)] {
            let (_, base) = times[0];
            for (files, t) in &times[1..] {
                line(
                    &format!("growth: {edited} edit at {files} files"),
                    *t,
                    &format!("{edited} edit at 200 files"),
                    base,
                );
            }
        }
        store.close().await;
    }
    Ok(())
}

fn content(i: usize, size: usize, salt: usize) -> Vec<u8> {
    let head = format!("// file {i} version {salt}\n");
    let mut out = head.into_bytes();
    out.resize(size.max(out.len()), b'x');
    out
}

async fn create(store: &SqlStore, files: usize) -> anyhow::Result<draftsmith_core::AppId> {
    let files = (0..files)
        .map(|i| {
            Ok((
                DraftPath::parse(&format!("src/f{i:05}.js"))?,
                content(i, 600, 0),
            ))
        })
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
    Ok(app.id)
}

/// Writes `paths` as a new revision, each with new content of `size` bytes.
async fn edit(
    store: &SqlStore,
    app: draftsmith_core::AppId,
    paths: &[String],
    size: usize,
    salt: usize,
) -> anyhow::Result<()> {
    let changes = paths
        .iter()
        .map(|path| {
            Ok(FileChange {
                path: DraftPath::parse(path)?,
                content: Some(content(0, size, salt + 1)),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    store
        .write_draft(app, None, changes, &UserId("bench".into()))
        .await?;
    Ok(())
}
