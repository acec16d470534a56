//! [`SqlStore`]: the one SQL implementation of every aggregate trait and so of
//! [`crate::Store`]. Its statements are written in the dialect SQLite and PostgreSQL share
//! (`$n` parameters, `ON CONFLICT`, `RETURNING`), so both databases run the same code; each
//! keeps its own migrations. The exceptions are the hot paths PostgreSQL runs as one
//! statement or stored function where SQLite runs a script (a run's start, its progress, a
//! landing, a restore). This module connects, and on SQLite keeps the write-ahead log
//! copied back into the database off the write path; each aggregate's module implements
//! its trait for [`SqlStore`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Executor, Row};
use tokio::sync::{Notify, watch};

use crate::blobs::DbBlobs;
use crate::error::{Result, StoreError};
use crate::manifests::Manifests;
use crate::writer::Writer;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a pooled connection may sit idle before it is checked again before use.
const RECHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How long writes must pause before SQLite's write-ahead log is copied back into the
/// database file, off the write path ([`keep_checkpointing`]): a run's writes come in
/// bursts (one per agent step), and the copy waits for the run's pauses, not the reverse.
const CHECKPOINT_QUIET: Duration = Duration::from_millis(150);

/// How long after a write the log is copied back at the latest, should writes never pause.
const CHECKPOINT_LATEST: Duration = Duration::from_secs(1);

/// The log's size, in pages, at which the writer copies it back itself, should the
/// background checkpoints fall behind (SQLite's default is 1,000: about every 10 restores).
const WRITER_CHECKPOINT_PAGES: u32 = 10_000;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, one instance.
    Sqlite,
    /// Shared by any number of instances.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The SQL store over a connection pool.
#[derive(Clone)]
pub struct SqlStore {
    /// Where reads go.
    pub(crate) pool: AnyPool,
    /// Where every write goes ([`Writer`]): on SQLite one connection the store holds,
    /// while the pool's connections are read-only.
    pub(crate) writer: Writer,
    pub(crate) backend: Backend,
    pub(crate) blobs: DbBlobs,
    /// On SQLite, the connection that checkpoints the log in the background, while a clone
    /// of the store lives.
    checkpoints: Option<(AnyPool, Arc<Checkpointing>)>,
    /// On SQLite, the writes so far, counted as the writer is handed back (after each
    /// commit): see [`crate::Store::writes`].
    pub(crate) writes: Option<watch::Receiver<u64>>,
    /// Draft manifests met here, by app and revision.
    pub(crate) manifests: Arc<Manifests>,
}

impl SqlStore {
    /// Opens (creating when missing) the SQLite file at `path` in WAL mode and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url).await
    }

    /// Connects to `url` (`sqlite://…` or `postgres://…`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                format!("unsupported database url scheme in {url:?}").into(),
            )));
        };
        let pool = match backend {
            Backend::Sqlite => {
                // The writer first: it creates the file and migrates it before any reader
                // opens it read-only. Each time it is let go, the log may have grown.
                let (written, writes) = watch::channel(0u64);
                let mut conn = sqlx::AnyConnection::connect(url).await?;
                sqlite_pragmas(&mut conn, false).await?;
                SQLITE_MIGRATIONS.run(&mut conn).await?;
                let writer = Writer::held(conn, written);
                let pool = pool_options(backend, 8, true).connect(url).await?;
                let checkpointer = pool_options(backend, 1, false).connect(url).await?;
                let checkpointing = Arc::new(Checkpointing::default());
                tokio::spawn(keep_checkpointing(
                    checkpointer.clone(),
                    writes.clone(),
                    checkpointing.stopped.clone(),
                ));
                let mut store = Self::with(pool, writer, backend);
                store.checkpoints = Some((checkpointer, checkpointing));
                store.writes = Some(writes);
                return Ok(store);
            }
            Backend::Postgres => pool_options(backend, 16, false).connect(url).await?,
        };
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok(Self::with(pool.clone(), Writer::Pool(pool), backend))
    }

    fn with(pool: AnyPool, writer: Writer, backend: Backend) -> Self {
        Self {
            blobs: DbBlobs::new(pool.clone(), writer.clone()),
            pool,
            writer,
            backend,
            checkpoints: None,
            writes: None,
            manifests: Arc::default(),
        }
    }

    /// Closes the pools, waiting for connections to return.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
        if let Some((checkpointer, checkpointing)) = &self.checkpoints {
            checkpointing.stopped.notify_one();
            checkpointer.close().await;
        }
    }
}

/// Tells the background checkpoints that the store is gone (its last clone dropped, or
/// closed).
#[derive(Default)]
struct Checkpointing {
    stopped: Arc<Notify>,
}

impl Drop for Checkpointing {
    fn drop(&mut self) {
        self.stopped.notify_one();
    }
}

/// Copies SQLite's write-ahead log back into the database file once writes pause for
/// [`CHECKPOINT_QUIET`] (or [`CHECKPOINT_LATEST`] after the first write it has not copied),
/// on a connection of its own, until `stopped`. Left to the writer, the copy (and the two
/// `fsync`s that end it) ran inside whichever commit grew the log past 1,000 pages: every
/// write waited behind it, as the file has one writer. A passive checkpoint waits for no
/// one: the writer appends meanwhile, and what readers still use is copied next time,
/// which comes without a write as well. An idle store does nothing: no timer wakes it, no
/// statement runs. The writer still copies the log itself past
/// [`WRITER_CHECKPOINT_PAGES`], should this fall behind.
async fn keep_checkpointing(pool: AnyPool, mut writes: watch::Receiver<u64>, stopped: Arc<Notify>) {
    'waiting: loop {
        tokio::select! {
            _ = stopped.notified() => break,
            changed = writes.changed() => if changed.is_err() { break },
        }
        let first = tokio::time::Instant::now();
        loop {
            writes.borrow_and_update();
            tokio::select! {
                _ = stopped.notified() => break 'waiting,
                _ = tokio::time::sleep(CHECKPOINT_QUIET) => {}
            }
            if pool.is_closed() {
                break 'waiting;
            }
            let written = writes.has_changed().unwrap_or(false);
            if written && first.elapsed() < CHECKPOINT_LATEST {
                continue;
            }
            // A write from here on wants another checkpoint.
            writes.borrow_and_update();
            if copied_all(&pool).await {
                break;
            }
        }
    }
    pool.close().await;
}

/// Runs a passive checkpoint; true when the log is all in the database file now (a
/// failure or a reader holding frames back wants another try).
async fn copied_all(pool: &AnyPool) -> bool {
    let answer = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await;
    match answer {
        // busy, frames in the log, frames copied
        Ok(row) => {
            let count = |i: usize| row.try_get::<i64, _>(i).ok();
            count(0) == Some(0) && count(1).is_some() && count(1) == count(2)
        }
        Err(error) => {
            tracing::debug!(%error, "a background checkpoint failed");
            false
        }
    }
}

/// A pool of at most `max` connections; on SQLite, `read_only` ones refuse to write.
fn pool_options(backend: Backend, max: u32, read_only: bool) -> AnyPoolOptions {
    let options = AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        // A connection is checked as it returns to the pool; checking it again before
        // each use would cost a round trip per store call. Only one that sat idle for a
        // while (the server may have dropped it) is checked, and replaced if dead.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < RECHECK_AFTER_IDLE {
                    return Ok(true);
                }
                Ok(conn.ping().await.is_ok())
            })
        });
    match backend {
        Backend::Sqlite => options.after_connect(move |conn, _| {
            Box::pin(async move { sqlite_pragmas(conn, read_only).await })
        }),
        Backend::Postgres => options,
    }
}

/// How every SQLite connection is set up; a `read_only` one refuses to write.
async fn sqlite_pragmas(conn: &mut sqlx::AnyConnection, read_only: bool) -> sqlx::Result<()> {
    // WAL lets readers proceed while one writer commits; the busy timeout makes a writer of
    // another process wait instead of failing.
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    // A statement inside a transaction that may fail part-way (a multi-row upsert) copies
    // each page it changes to a statement journal, so it can be undone alone; past 64 KiB
    // that journal is a temporary file, made, written page by page and deleted per
    // statement (a third of a 50-file restore). In memory it is a copy per page, freed with
    // the statement.
    conn.execute("PRAGMA temp_store = MEMORY").await?;
    if read_only {
        conn.execute("PRAGMA query_only = ON").await?;
    } else {
        let pages = format!("PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}");
        conn.execute(pages.as_str()).await?;
    }
    Ok(())
}

/// A store on a new database of `kind` with a table `scratch (columns)`, for tests of the
/// store's own SQL machinery; the database lives as long as the [`TestDb`](draftsmith_testkit::TestDb).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) async fn scratch_store(
    kind: draftsmith_testkit::StoreKind,
    columns: &str,
) -> (draftsmith_testkit::TestDb, SqlStore) {
    let db = draftsmith_testkit::TestDb::new(kind).await;
    let store = SqlStore::connect(&db.url).await.unwrap();
    sqlx::query(&format!("CREATE TABLE scratch ({columns})"))
        .execute(&mut *store.writer.acquire().await.unwrap())
        .await
        .unwrap();
    (db, store)
}
