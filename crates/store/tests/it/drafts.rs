//! Apps and drafts: revision compare-and-swap, manifests of earlier revisions, slugs.

use draftsmith_store::StoreError;
use draftsmith_store::prelude::*;
use draftsmith_testkit::StoreKind;

use crate::support::{Fixture, alice, delete, files, pairs, path, put};

use draftsmith_core::{AppId, BlobHash};
use draftsmith_store::SqlStore;
use draftsmith_testkit::TestDb;

draftsmith_testkit::both_stores!(
    a_write_on_a_stale_base_revision_is_refused,
    a_write_that_changes_nothing_keeps_the_revision,
    a_write_of_more_files_than_one_statement_holds_lands_whole,
    an_earlier_revision_reads_back_as_it_was,
    read_file_tells_a_missing_file_from_a_missing_app,
    a_draft_reads_its_revision_and_files_in_path_order,
    slugs_get_a_suffix_when_taken,
    writes_are_counted_where_the_store_sees_them_all,
);

async fn a_write_on_a_stale_base_revision_is_refused(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let first = f.write(app, Some(1), vec![put("index.html", "v2")]);
    let first = first.await.unwrap();
    assert_eq!(first.revision, 2);
    assert_eq!(first.changes.modified, vec!["index.html"]);

    let stale = f.write(app, Some(1), vec![put("index.html", "v3")]).await;
    assert!(
        matches!(stale, Err(StoreError::RevisionConflict { current: 2 })),
        "{stale:?}"
    );
    let draft = f.store.draft(app).await.unwrap();
    assert_eq!(draft.revision, 2);
    assert_eq!(
        files(&f.store, &draft).await,
        pairs(&[("index.html", "v2")])
    );

    // Without an expected revision the write applies on whatever is current.
    let blind = f.write(app, None, vec![put("a.txt", "a")]);
    assert_eq!(blind.await.unwrap().revision, 3);
    assert_eq!(f.store.app(app).await.unwrap().draft_revision, 3);
}

async fn a_write_that_changes_nothing_keeps_the_revision(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let same = f.write(app, Some(1), vec![put("index.html", "v1")]);
    let same = same.await.unwrap();
    assert_eq!(same.revision, 1);
    assert!(
        same.changes.added.is_empty()
            && same.changes.modified.is_empty()
            && same.changes.deleted.is_empty()
    );
    let gone = f.write(app, Some(1), vec![delete("missing.txt")]);
    assert_eq!(gone.await.unwrap().revision, 1);
}

/// Writes of more rows than one multi-row statement takes (blobs, files, the change log,
/// deletions) go out in several statements, every parameter bound to its own row.
async fn a_write_of_more_files_than_one_statement_holds_lands_whole(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let name = |i: usize| format!("src/f{i:04}.txt");
    let added: Vec<_> = (0..1_000)
        .map(|i| put(&name(i), &format!("one {i}")))
        .collect();
    let first = f.write(app, Some(1), added).await.unwrap();
    assert_eq!(first.changes.added.len(), 1_000);
    // Every other file changed, the first 450 of the others deleted.
    let changes: Vec<_> = (0..1_000)
        .filter_map(|i| match i % 2 {
            0 => Some(put(&name(i), &format!("two {i}"))),
            _ if i < 900 => Some(delete(&name(i))),
            _ => None,
        })
        .collect();
    let second = f.write(app, Some(2), changes).await.unwrap();
    assert_eq!(
        (second.changes.modified.len(), second.changes.deleted.len()),
        (500, 450)
    );
    let expected = |revision: usize| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = (0..1_000)
            .filter(|i| revision == 2 || i % 2 == 0 || *i >= 900)
            .map(|i| {
                let version = if revision == 3 && i % 2 == 0 {
                    "two"
                } else {
                    "one"
                };
                (name(i), format!("{version} {i}"))
            })
            .collect();
        out.push(("index.html".into(), "v1".into()));
        out.sort();
        out
    };
    let draft = f.store.draft(app).await.unwrap();
    assert_eq!(files(&f.store, &draft).await, expected(3));
    let earlier = f.store.manifest_at(app, 2).await.unwrap();
    assert_eq!(files(&f.store, &earlier).await, expected(2));
}

async fn an_earlier_revision_reads_back_as_it_was(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let changes = vec![put("a.txt", "a"), put("index.html", "v2")];
    f.write(app, Some(1), changes).await.unwrap();
    let changes = vec![delete("index.html"), put("a.txt", "a2"), put("b.txt", "b")];
    let third = f.write(app, Some(2), changes).await.unwrap();
    assert_eq!(third.changes.added, vec!["b.txt"]);
    assert_eq!(third.changes.modified, vec!["a.txt"]);
    assert_eq!(third.changes.deleted, vec!["index.html"]);

    let at = |revision| f.store.manifest_at(app, revision);
    assert_eq!(
        files(&f.store, &at(1).await.unwrap()).await,
        pairs(&[("index.html", "v1")])
    );
    assert_eq!(
        files(&f.store, &at(2).await.unwrap()).await,
        pairs(&[("a.txt", "a"), ("index.html", "v2")])
    );
    let current = f.store.draft(app).await.unwrap();
    assert_eq!(at(3).await.unwrap(), current);
    assert_eq!(
        files(&f.store, &current).await,
        pairs(&[("a.txt", "a2"), ("b.txt", "b")])
    );
    assert!(matches!(at(4).await, Err(StoreError::NotFound("revision"))));
    assert!(matches!(at(0).await, Err(StoreError::NotFound("revision"))));
}

async fn read_file_tells_a_missing_file_from_a_missing_app(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let (revision, file, content) = f.store.read_file(app, &path("index.html")).await.unwrap();
    assert_eq!(
        (revision, file.path.as_str(), file.size),
        (1, "index.html", 2)
    );
    assert_eq!(content, b"v1");
    let missing = f.store.read_file(app, &path("nope.txt")).await;
    assert!(matches!(missing, Err(StoreError::NotFound("file"))));
    let other = draftsmith_core::AppId::new();
    let no_app = f.store.read_file(other, &path("index.html")).await;
    assert!(matches!(no_app, Err(StoreError::NotFound("app"))));
}

async fn a_draft_reads_its_revision_and_files_in_path_order(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let app = f.app().await;
    let names = ["b.txt", "B.txt", "a/z.txt", "a.txt", "a-b.txt"];
    let puts = names.iter().map(|name| put(name, name)).collect();
    f.write(app, Some(1), puts).await.unwrap();
    let draft = f.store.draft(app).await.unwrap();
    assert_eq!(draft.revision, 2);
    let paths: Vec<&str> = draft.files.iter().map(|file| file.path.as_str()).collect();
    // Bytewise, whatever the database's collation: upper case first, '-' < '.' < '/'.
    assert_eq!(
        paths,
        [
            "B.txt",
            "a-b.txt",
            "a.txt",
            "a/z.txt",
            "b.txt",
            "index.html"
        ]
    );

    // A draft without files still has its revision.
    let mut gone: Vec<_> = names.iter().map(|name| delete(name)).collect();
    gone.push(delete("index.html"));
    f.write(app, Some(2), gone).await.unwrap();
    let empty = f.store.draft(app).await.unwrap();
    assert_eq!((empty.revision, empty.files.len()), (3, 0));

    let missing = f.store.draft(AppId::new()).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound("app"))),
        "{missing:?}"
    );
}

async fn slugs_get_a_suffix_when_taken(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let first = f.app_named("One").await;
    let second = f.app_named("Two").await;
    let third = f.app_named("Three").await;
    for (app, slug) in [(first, "demo"), (second, "demo-2"), (third, "demo-3")] {
        assert_eq!(f.store.app(app).await.unwrap().slug, slug);
    }
    let mine = f.store.apps(Some(&alice())).await.unwrap();
    assert_eq!(mine.len(), 3);
    let nobody = draftsmith_core::UserId("bob".into());
    assert!(f.store.apps(Some(&nobody)).await.unwrap().is_empty());
    assert_eq!(f.store.apps(None).await.unwrap().len(), 3);
}

/// SQLite's draft tables, rebuilt in their key's order by migration 0017, keep what they
/// held: a draft written under the earlier schema reads back whole, its earlier revision
/// too, and takes the next write.
#[tokio::test]
async fn drafts_written_before_the_rebuild_of_their_tables_survive_it() {
    let db = TestDb::new(StoreKind::Sqlite).await;
    let earlier = db.dir.path().join("migrations-before-0017");
    std::fs::create_dir(&earlier).unwrap();
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&migrations).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.as_str() < "0017" {
            std::fs::copy(entry.path(), earlier.join(&name)).unwrap();
        }
    }
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(earlier.as_path())
        .await
        .unwrap();
    migrator.run(&pool).await.unwrap();
    let app = AppId::new().to_string();
    let blob = |text: &str| (BlobHash::of(text.as_bytes()).to_string(), text.len() as i64);
    let ((v1, v1_size), (v2, v2_size), (a, a_size)) = (blob("v1"), blob("v2"), blob("a"));
    sqlx::query(
        "INSERT INTO apps (id, slug, name, template, owner_user_id, draft_revision, \
         created_at, updated_at) VALUES (?, 'old', 'Old', 'static', 'alice', 2, 0, 0)",
    )
    .bind(&app)
    .execute(&pool)
    .await
    .unwrap();
    for (hash, size, text) in [
        (&v1, v1_size, "v1"),
        (&v2, v2_size, "v2"),
        (&a, a_size, "a"),
    ] {
        sqlx::query("INSERT INTO blobs (hash, size, content) VALUES (?, ?, ?)")
            .bind(hash)
            .bind(size)
            .bind(text.as_bytes())
            .execute(&pool)
            .await
            .unwrap();
    }
    for (path, hash, size) in [("index.html", &v2, v2_size), ("a.txt", &a, a_size)] {
        sqlx::query("INSERT INTO draft_files (app_id, path, blob_hash, size) VALUES (?, ?, ?, ?)")
            .bind(&app)
            .bind(path)
            .bind(hash)
            .bind(size)
            .execute(&pool)
            .await
            .unwrap();
    }
    for revision in [1, 2] {
        sqlx::query("INSERT INTO draft_revisions VALUES (?, ?, 'alice', 0)")
            .bind(&app)
            .bind(revision)
            .execute(&pool)
            .await
            .unwrap();
    }
    let changes = [
        (1, "index.html", None, Some((&v1, v1_size))),
        (2, "index.html", Some((&v1, v1_size)), Some((&v2, v2_size))),
        (2, "a.txt", None, Some((&a, a_size))),
    ];
    for (revision, path, old, new) in changes {
        sqlx::query(
            "INSERT INTO draft_changes (app_id, revision, path, old_hash, old_size, \
             new_hash, new_size) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&app)
        .bind(revision)
        .bind(path)
        .bind(old.map(|(h, _)| h.as_str()))
        .bind(old.map(|(_, s)| s))
        .bind(new.map(|(h, _)| h.as_str()))
        .bind(new.map(|(_, s)| s))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = SqlStore::connect(&db.url).await.unwrap();
    let app: AppId = app.parse().unwrap();
    let draft = store.draft(app).await.unwrap();
    assert_eq!(draft.revision, 2);
    assert_eq!(
        files(&store, &draft).await,
        pairs(&[("a.txt", "a"), ("index.html", "v2")])
    );
    let first = store.manifest_at(app, 1).await.unwrap();
    assert_eq!(files(&store, &first).await, pairs(&[("index.html", "v1")]));
    let next = store
        .write_draft(app, Some(2), vec![put("index.html", "v3")], &alice())
        .await
        .unwrap();
    assert_eq!(next.revision, 3);
    assert_eq!(next.changes.modified, vec!["index.html"]);
    assert_eq!(
        store.changes_between(app, 1, 3).await.unwrap().modified,
        vec!["index.html"]
    );
}

/// On SQLite what a write adds to the write-ahead log reaches the database file by itself:
/// nothing else asks for it, and the writer copies the log itself only past 10,000 pages,
/// far beyond these writes' few hundred. The copy follows each write, a later one after the
/// store sat idle too (an idle store runs no checkpoints: the next write wakes them).
#[tokio::test]
async fn sqlites_log_reaches_the_database_file_in_the_background() {
    let db = TestDb::new(StoreKind::Sqlite).await;
    let store = SqlStore::connect(&db.url).await.unwrap();
    let file = db.dir.path().join("draftsmith.db");
    let before = std::fs::metadata(&file).unwrap().len();
    // Distinct 4 KiB contents, `count` of them from `first`.
    let contents = |first: usize, count: usize| {
        (first..first + count).map(|i| {
            let mut content = format!("file {i}\n").into_bytes();
            content.resize(4096, b'x');
            (path(&format!("src/f{i:03}.txt")), content)
        })
    };
    let app = store
        .create_app(draftsmith_store::NewApp {
            name: "Big".into(),
            slug: "big".into(),
            template: "static".into(),
            owner: alice(),
            files: contents(0, 512).collect(),
        })
        .await
        .unwrap()
        .id;
    let grown = grows_past(&file, before + 2 * 1024 * 1024).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let changes = contents(512, 256)
        .map(|(path, content)| draftsmith_store::FileChange {
            path,
            content: Some(content),
        })
        .collect();
    store
        .write_draft(app, None, changes, &alice())
        .await
        .unwrap();
    grows_past(&file, grown + 1024 * 1024).await;
    store.close().await;
}

/// Waits up to 10 s for `file` to grow past `size` bytes; its size then.
async fn grows_past(file: &std::path::Path, size: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut now = std::fs::metadata(file).unwrap().len();
    while now < size && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        now = std::fs::metadata(file).unwrap().len();
    }
    assert!(now >= size, "the database file is {now} bytes, not {size}");
    now
}

/// SQLite's store counts each committed write (its one process makes them all), so a
/// follower of a log can wait for one; PostgreSQL's has no such count (other instances
/// write too) and its followers poll.
async fn writes_are_counted_where_the_store_sees_them_all(kind: StoreKind) {
    let f = Fixture::new(kind).await;
    let Some(mut writes) = f.store.writes() else {
        assert_eq!(kind, StoreKind::Postgres);
        return;
    };
    assert_eq!(kind, StoreKind::Sqlite);
    let app = f.app().await;
    writes.borrow_and_update();
    f.write(app, None, vec![put("a.txt", "a")]).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), writes.changed())
        .await
        .expect("no write counted within 10 s")
        .unwrap();
    // A read is no write (once the write's own hand-backs are all counted).
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    writes.borrow_and_update();
    f.store.draft(app).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!writes.has_changed().unwrap());
}

/// `mxFrame` (the log's last frame) and `nBackfill` (the frames copied into the database
/// file) from SQLite's WAL index, read from its shared-memory file as the library keeps it.
fn wal_frames(db: &TestDb) -> (u32, u32) {
    let shm = std::fs::read(db.dir.path().join("draftsmith.db-shm")).unwrap();
    let word = |at: usize| u32::from_ne_bytes(shm[at..at + 4].try_into().unwrap());
    (word(16), word(96))
}

#[tokio::test]
async fn the_log_is_copied_back_once_writes_pause() {
    let f = Fixture::new(StoreKind::Sqlite).await;
    let app = f.app().await;
    for i in 0..8 {
        let content = format!("v{i}");
        f.write(app, None, vec![put("index.html", &content)])
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (last, _) = wal_frames(&f.db);
    assert!(last > 0, "the writes should be in the log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (last, copied) = wal_frames(&f.db);
        if last == copied {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log was not copied back: {copied} of {last} frames"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let draft = f.store.draft(app).await.unwrap();
    assert_eq!(draft.revision, 9);
}
