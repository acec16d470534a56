//! Throwaway databases: a SQLite file in a temporary directory, or a PostgreSQL database
//! created for one test and dropped after it. PostgreSQL must answer: tests fail, never
//! skip, when it does not.

use sqlx::{Connection, Executor, PgConnection};

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// Embedded SQLite.
    Sqlite,
    /// The PostgreSQL server at `DRAFTSMITH_TEST_PG_URL`.
    Postgres,
}

/// The server-level connection used to create and drop test databases.
pub fn pg_admin_url() -> String {
    std::env::var("DRAFTSMITH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that lives as long as this value.
pub struct TestDb {
    /// Which kind.
    pub kind: StoreKind,
    /// The URL a store connects with (`sqlite://…` or `postgres://…`).
    pub url: String,
    /// The data directory (SQLite file, sandboxes), removed on drop.
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    /// Creates an empty database of `kind`.
    pub async fn new(kind: StoreKind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match kind {
            StoreKind::Sqlite => {
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("draftsmith.db").display()
                );
                Self {
                    kind,
                    url,
                    dir,
                    pg_name: None,
                }
            }
            StoreKind::Postgres => {
                let name = format!("draftsmith_test_{}", uuid::Uuid::new_v4().simple());
                let admin = pg_admin_url();
                let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL must answer at {admin} for the test suite: {e}")
                });
                conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
                    .await
                    .unwrap();
                conn.close().await.ok();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                let url = format!("{base}/{name}");
                Self {
                    kind,
                    url,
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// The `DATABASE_URL` for a server process: empty for SQLite (it uses its data dir).
    pub fn database_url_env(&self) -> String {
        match self.kind {
            StoreKind::Sqlite => String::new(),
            StoreKind::Postgres => self.url.clone(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime; use a thread with its own to stay sync.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&pg_admin_url()).await {
                    let _ = conn
                        .execute(
                            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str(),
                        )
                        .await;
                }
            });
        })
        .join();
    }
}

/// `both_stores!(name, name2, …)`: each `async fn name(kind: StoreKind)` becomes a module
/// with a `sqlite` and a `postgres` test.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(draftsmith_testkit::StoreKind::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(draftsmith_testkit::StoreKind::Postgres).await
            }
        }
    )*};
}
