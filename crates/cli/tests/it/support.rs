//! Runs one async test body against each store.

use std::path::PathBuf;

/// The `draftsmith` binary cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_draftsmith"))
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
