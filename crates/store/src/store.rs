//! [`Store`]: everything draftsmith persists, as the sum of its aggregates. Each aggregate
//! is its own trait with its own module; `Store` adds what belongs to none of them (the
//! backend, health, counts) and the blob store the others write through.

use async_trait::async_trait;
use draftsmith_core::BlobHash;
use draftsmith_core::api::StorageStats;
use sqlx::Row;

use crate::apps::AppStore;
use crate::auth::AuthStore;
use crate::blobs::BlobStore;
use crate::chat::ChatStore;
use crate::checkpoints::CheckpointStore;
use crate::db::{Backend, SqlStore};
use crate::error::{Result, StoreError};
use crate::queue::QueueStore;
use crate::releases::ReleaseStore;
use crate::resources::ResourceStore;
use crate::runs::RunStore;
use crate::steering::SteeringStore;
use crate::uploads::UploadStore;
use crate::usage::UsageStore;

/// Everything draftsmith persists. Implementations must be safe to share between instances
/// of the service: invariants live in the database, not in process memory.
///
/// The methods of the aggregate traits are called on a `dyn Store` directly
/// (`store.run(id)`); code holding a concrete store imports [`crate::prelude`].
#[async_trait]
pub trait Store:
    AuthStore
    + AppStore
    + RunStore
    + ChatStore
    + CheckpointStore
    + ResourceStore
    + ReleaseStore
    + UsageStore
    + QueueStore
    + SteeringStore
    + UploadStore
    + Send
    + Sync
    + 'static
{
    /// Which database this is, for health and capabilities.
    fn backend(&self) -> Backend;
    /// Checks the database answers.
    async fn ping(&self) -> Result<()>;
    /// Counts for operators.
    async fn stats(&self) -> Result<StorageStats>;
    /// The writes this store committed, counted: the count changes after each commit.
    /// Only where this store sees every write to the database (SQLite: one process owns
    /// the file); `None` on PostgreSQL, which other instances write too, so a reader
    /// following a log there polls it.
    fn writes(&self) -> Option<tokio::sync::watch::Receiver<u64>>;
    /// The blob store this store writes through (a separate backend, so an object store can
    /// replace the database table).
    fn blobs(&self) -> &dyn BlobStore;
    /// Content of one blob.
    async fn blob(&self, hash: &BlobHash) -> Result<Vec<u8>> {
        self.blobs()
            .get(hash)
            .await?
            .ok_or(StoreError::NotFound("blob"))
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    fn writes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.writes.clone()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn stats(&self) -> Result<StorageStats> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM blobs) AS blobs, \
                    (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs) AS blob_bytes, \
                    (SELECT COUNT(*) FROM apps) AS apps",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(StorageStats {
            blobs: row.try_get("blobs")?,
            blob_bytes: row.try_get("blob_bytes")?,
            apps: row.try_get("apps")?,
        })
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }
}
