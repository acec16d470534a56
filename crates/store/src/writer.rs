//! Where a store's writes go, and the write transaction. On PostgreSQL, the pool. On
//! SQLite, one connection that the store holds itself: the file takes one writer at a
//! time, so writers wait their turn for it in order (instead of each retrying the file's
//! lock under the busy timeout's sleeps), and its page cache stays valid from one write to
//! the next. It is held, not pooled: sqlx (0.8) hands a pooled connection back through a
//! spawned task that pings it first, a round trip to the connection's thread, and every
//! write that followed another waited for both (0.3–1.4 ms on a busy 2-core host for the
//! first write of each run).
//! It imports nothing from this crate but the error type, so any module may use it.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard, watch};

use crate::error::Result;

/// Where writes go.
#[derive(Clone)]
pub(crate) enum Writer {
    /// Any connection of the pool (PostgreSQL).
    Pool(AnyPool),
    /// The one connection the store holds (SQLite).
    Held(Arc<Held>),
}

/// The held connection, and the count of writes made through it.
pub(crate) struct Held {
    /// `None` once the store is closed.
    conn: Arc<Mutex<Option<AnyConnection>>>,
    /// A transaction was dropped before it ended and is not rolled back yet; the next
    /// writer rolls it back first. Changed only by whoever holds `conn`.
    open: AtomicBool,
    /// Counted as each write lets the connection go (after its commit): see
    /// [`crate::Store::writes`].
    writes: watch::Sender<u64>,
}

impl Writer {
    /// Holds `conn` as the store's one writer; `writes` counts the writes made through it.
    pub(crate) fn held(conn: AnyConnection, writes: watch::Sender<u64>) -> Self {
        Self::Held(Arc::new(Held {
            conn: Arc::new(Mutex::new(Some(conn))),
            open: AtomicBool::new(false),
            writes,
        }))
    }

    /// Whether it writes to SQLite.
    pub(crate) fn is_sqlite(&self) -> bool {
        matches!(self, Self::Held(_))
    }

    /// A connection to write one statement with (its own transaction).
    pub(crate) async fn acquire(&self) -> Result<WriteConn> {
        Ok(match self {
            Self::Pool(pool) => WriteConn::Pooled(pool.acquire().await?),
            Self::Held(held) => WriteConn::Held(held.lock().await?),
        })
    }

    /// Starts a transaction that will write. On SQLite it takes the file's write lock up
    /// front (`BEGIN IMMEDIATE`), so a writer of another process waits under the busy
    /// timeout instead of failing when a read lock cannot be upgraded.
    pub(crate) async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Self::Pool(pool) => Tx::Pooled(pool.begin().await?),
            Self::Held(held) => {
                let mut locked = held.lock().await?;
                locked.execute("BEGIN IMMEDIATE").await?;
                Tx::Held(HeldTx {
                    locked,
                    committed: false,
                })
            }
        })
    }

    /// Runs `statement` as one transaction in one call to the database, and returns the
    /// rows it answered: on PostgreSQL one statement; on SQLite a script framed by
    /// [`framed`], one call to the connection's thread instead of one per statement and
    /// two more for the transaction. A statement of the script that fails, or a future
    /// dropped in the middle, leaves the transaction open: it is rolled back as a
    /// [`Tx`] dropped before its commit is.
    pub(crate) async fn fetch_all_at_once<'q>(
        &self,
        statement: Query<'q, Any, AnyArguments<'q>>,
    ) -> Result<Vec<AnyRow>> {
        let held = match self {
            Self::Pool(pool) => return Ok(statement.fetch_all(pool).await?),
            Self::Held(held) => held,
        };
        // Ended by the script's own `COMMIT`; dropped before it, rolled back.
        let mut tx = HeldTx {
            locked: held.lock().await?,
            committed: false,
        };
        let rows = statement.fetch_all(&mut *tx.locked).await?;
        tx.committed = true;
        Ok(rows)
    }

    /// Closes the pool, or the held connection once the writer holding it is done.
    pub(crate) async fn close(&self) {
        match self {
            Self::Pool(pool) => pool.close().await,
            Self::Held(held) => {
                let conn = held.conn.lock().await.take();
                if let Some(conn) = conn {
                    let _ = conn.close().await;
                }
            }
        }
    }
}

/// A script's first statement, for a write framed by [`framed`] that stands only while the
/// app (`app`, a parameter mark) holds its draft at `revision` (a mark) and `holds` (a
/// condition) is true: otherwise it fails, setting the draft's revision to `NULL`, which
/// the column refuses, so the script writes nothing and its caller writes step by step.
pub(crate) fn only_while(app: &str, revision: &str, holds: &str) -> String {
    format!(
        "UPDATE apps SET draft_revision = NULL \
         WHERE id = {app} AND (draft_revision <> {revision} OR NOT ({holds}))"
    )
}

/// `statements` (`;`-separated) as one SQLite transaction, for
/// [`Writer::fetch_all_at_once`].
pub(crate) fn framed(statements: &str) -> String {
    format!("BEGIN IMMEDIATE; {statements}; COMMIT")
}

impl Held {
    /// The connection, once the writer before is done with it (and what it left open is
    /// rolled back).
    async fn lock(self: &Arc<Self>) -> Result<Locked> {
        let slot = self.conn.clone().lock_owned().await;
        let mut conn =
            OwnedMutexGuard::try_map(slot, Option::as_mut).map_err(|_| sqlx::Error::PoolClosed)?;
        if self.open.load(Ordering::Acquire) {
            // Nothing is left open when the write ended after all (dropped as it
            // committed): SQLite then refuses the rollback, and that is fine.
            if let Err(error) = conn.execute("ROLLBACK").await {
                tracing::debug!(%error, "nothing was left open to roll back");
            }
            self.open.store(false, Ordering::Release);
        }
        Ok(Locked {
            conn,
            held: self.clone(),
        })
    }
}

/// The held connection while one writer has it; the write is counted as it is let go.
pub(crate) struct Locked {
    conn: OwnedMappedMutexGuard<Option<AnyConnection>, AnyConnection>,
    held: Arc<Held>,
}

impl Deref for Locked {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        self.held.writes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A connection to write one statement with.
pub(crate) enum WriteConn {
    Pooled(PoolConnection<Any>),
    Held(Locked),
}

impl Deref for WriteConn {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Held(locked) => locked,
        }
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Self::Pooled(conn) => conn,
            Self::Held(locked) => locked,
        }
    }
}

/// A transaction on either database; it derefs to its connection, as sqlx's does, and is
/// rolled back when dropped before [`Tx::commit`].
pub(crate) enum Tx {
    /// On a pool's connection (PostgreSQL's writes, and reads that must see one snapshot).
    Pooled(Transaction<'static, Any>),
    /// On the held connection (SQLite's writes).
    Held(HeldTx),
}

/// A transaction on the held connection.
pub(crate) struct HeldTx {
    locked: Locked,
    committed: bool,
}

impl Tx {
    /// A transaction begun on `pool`, such as a read that must see one snapshot.
    pub(crate) async fn begin_on(pool: &AnyPool) -> Result<Self> {
        Ok(Self::Pooled(pool.begin().await?))
    }

    /// Commits it.
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Self::Pooled(tx) => tx.commit().await?,
            Self::Held(mut tx) => {
                tx.locked.execute("COMMIT").await?;
                tx.committed = true;
            }
        }
        Ok(())
    }
}

impl Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Self::Pooled(tx) => tx,
            Self::Held(tx) => &tx.locked,
        }
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Self::Pooled(tx) => tx,
            Self::Held(tx) => &mut tx.locked,
        }
    }
}

impl Drop for HeldTx {
    /// Not committed: rolled back before the next writer has the connection, by a task
    /// that takes it next when a runtime is at hand, else by that writer.
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let held = &self.locked.held;
        held.open.store(true, Ordering::Release);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let held = held.clone();
            runtime.spawn(async move {
                if let Err(error) = held.lock().await {
                    tracing::warn!(%error, "could not roll back a dropped transaction");
                }
            });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use draftsmith_testkit::{StoreKind, TestDb};
    use sqlx::Row;

    use crate::db::{SqlStore, scratch_store};

    async fn names(store: &SqlStore) -> Vec<String> {
        sqlx::query("SELECT name FROM scratch ORDER BY name")
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get("name"))
            .collect()
    }

    /// A transaction dropped before its commit (a failed statement, a cancelled write)
    /// leaves nothing, and the next writer has the connection as if it never began:
    /// on SQLite the held connection must be rolled back before anyone writes again.
    #[tokio::test]
    async fn a_dropped_transaction_is_rolled_back_before_the_next_write() {
        for kind in [StoreKind::Sqlite, StoreKind::Postgres] {
            let (_db, store) = scratch_store(kind, "name TEXT PRIMARY KEY").await;
            let insert =
                |name: &'static str| sqlx::query("INSERT INTO scratch VALUES ($1)").bind(name);

            let mut tx = store.writer.begin().await.unwrap();
            insert("dropped").execute(&mut *tx).await.unwrap();
            drop(tx);
            // At once: the next write finds no transaction left open.
            let mut tx = store.writer.begin().await.unwrap();
            insert("kept").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(names(&store).await, ["kept"], "{kind:?}");

            // A statement that fails inside a transaction leaves it to be dropped too.
            let mut tx = store.writer.begin().await.unwrap();
            insert("partial").execute(&mut *tx).await.unwrap();
            assert!(insert("kept").execute(&mut *tx).await.is_err(), "{kind:?}");
            drop(tx);
            insert("after")
                .execute(&mut *store.writer.acquire().await.unwrap())
                .await
                .unwrap();
            assert_eq!(names(&store).await, ["after", "kept"], "{kind:?}");

            // A script run in one call whose second statement fails keeps nothing of
            // the first, and leaves nothing open either.
            let failing = match kind {
                StoreKind::Sqlite => super::framed(
                    "INSERT INTO scratch VALUES ('one call'); INSERT INTO scratch VALUES ('kept')",
                ),
                StoreKind::Postgres => "WITH a AS (INSERT INTO scratch VALUES ('one call')) \
                     INSERT INTO scratch VALUES ('kept')"
                    .to_owned(),
            };
            let answer = store.writer.fetch_all_at_once(sqlx::query(&failing)).await;
            assert!(answer.is_err(), "{kind:?}");
            insert("last")
                .execute(&mut *store.writer.acquire().await.unwrap())
                .await
                .unwrap();
            assert_eq!(names(&store).await, ["after", "kept", "last"], "{kind:?}");

            // Closed: writes are refused with an error, not left waiting.
            store.close().await;
            assert!(store.writer.begin().await.is_err(), "{kind:?}");
        }
    }

    /// Every write through SQLite's held connection is counted once it is let go (what
    /// wakes the background checkpoint and the app-event followers); one that is still
    /// open is not yet.
    #[tokio::test]
    async fn sqlite_writes_are_counted_as_they_end() {
        let db = TestDb::new(StoreKind::Sqlite).await;
        let store = SqlStore::connect(&db.url).await.unwrap();
        let mut writes = store.writes.clone().unwrap();
        let before = *writes.borrow_and_update();
        let mut tx = store.writer.begin().await.unwrap();
        sqlx::query("CREATE TABLE scratch (name TEXT PRIMARY KEY)")
            .execute(&mut *tx)
            .await
            .unwrap();
        assert!(!writes.has_changed().unwrap());
        tx.commit().await.unwrap();
        assert_eq!(*writes.borrow_and_update(), before + 1);
        sqlx::query("INSERT INTO scratch VALUES ('a')")
            .execute(&mut *store.writer.acquire().await.unwrap())
            .await
            .unwrap();
        assert_eq!(*writes.borrow_and_update(), before + 2);
    }
}
