//! Issue: writing revision N+1 of a large draft when one file changes must cost what
//! changed, not what the draft holds. Measured against the store on SQLite and PostgreSQL;
//! the baseline is writing the whole draft once.

use draftsmith_core::{DraftPath, UserId};
use draftsmith_store::prelude::*;
use draftsmith_store::{FileChange, NewApp, SqlStore};
use draftsmith_testkit::{StoreKind, TestDb};

use crate::report::{line, median};

const RUNS: usize = 15;

pub async fn run() -> anyhow::Result<()> {
    println!("== drafts: cost of revision N+1 when one file changes ==");
    for kind in [StoreKind::Sqlite, StoreKind::Postgres] {
        let db = TestDb::new(kind).await;
        let store = SqlStore::connect(&db.url).await?;
        println!("-- {kind:?}");
        let mut small_edit = Vec::new();
        for files in [200usize, 2_000, 20_000] {
            let app = create(&store, files).await?;
            let full = median(3, |_| async {
                create(&store, files).await?;
                Ok(())
            })
            .await?;
            let one = median(RUNS, |i| {
                let store = &store;
                async move {
                    edit(store, app, &format!("src/f{:05}.js", i % files), 1_024, i).await
                }
            })
            .await?;
            line(
                &format!("revision N+1, 1 KiB file changed, {files} files"),
                one,
                &format!("writing all {files} files"),
                full,
            );
            small_edit.push((files, one));
            if files == 2_000 {
                let big = median(RUNS, |i| {
                    let store = &store;
                    async move { edit(store, app, "src/f00001.js", 1 << 20, i).await }
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
        let (_, base) = small_edit[0];
        for (files, t) in &small_edit[1..] {
            line(
                &format!("growth: 1 KiB edit at {files} files"),
                *t,
                "1 KiB edit at 200 files",
                base,
            );
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

async fn edit(
    store: &SqlStore,
    app: draftsmith_core::AppId,
    path: &str,
    size: usize,
    salt: usize,
) -> anyhow::Result<()> {
    let change = FileChange {
        path: DraftPath::parse(path)?,
        content: Some(content(0, size, salt + 1)),
    };
    store
        .write_draft(app, None, vec![change], &UserId("bench".into()))
        .await?;
    Ok(())
}
