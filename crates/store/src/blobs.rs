//! Content-addressed blob storage. Writing a blob that exists is a no-op, so callers write
//! blobs before the transaction that points at them, and a failed transaction leaves at
//! worst an unreferenced blob.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use draftsmith_core::BlobHash;
use sqlx::{AnyPool, Row};

use crate::error::Result;
use crate::sql::{CHUNK, Marks, hash};
use crate::writer::Writer;

/// Where file contents live.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores each content under its hash; existing ones are left alone.
    async fn put_many(&self, blobs: &[(&BlobHash, &[u8])]) -> Result<()>;
    /// Reads a blob back.
    async fn get(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>>;
    /// Reads the blobs of `hashes` that exist, by hash; one query per few hundred rather
    /// than one per blob where the store can.
    async fn get_many(&self, hashes: &[BlobHash]) -> Result<HashMap<BlobHash, Vec<u8>>> {
        let mut found = HashMap::with_capacity(hashes.len());
        for hash in hashes {
            if let Some(content) = self.get(hash).await? {
                found.insert(hash.clone(), content);
            }
        }
        Ok(found)
    }
}

/// Blobs in the database's `blobs` table, so every instance sharing it reads every draft.
#[derive(Clone)]
pub struct DbBlobs {
    /// Reads.
    pool: AnyPool,
    /// Writes ([`crate::SqlStore`]'s writer).
    writer: Writer,
}

impl DbBlobs {
    /// Reads the `blobs` table through `pool` and writes it through `writer`.
    pub(crate) fn new(pool: AnyPool, writer: Writer) -> Self {
        Self { pool, writer }
    }
}

#[async_trait]
impl BlobStore for DbBlobs {
    /// A few multi-row statements, each its own transaction: a blob is whole or absent,
    /// and one written before a failure is at worst unreferenced.
    async fn put_many(&self, blobs: &[(&BlobHash, &[u8])]) -> Result<()> {
        let mut seen = HashSet::new();
        let blobs: Vec<&(&BlobHash, &[u8])> = blobs
            .iter()
            .filter(|(hash, _)| seen.insert(*hash))
            .collect();
        let marks = Marks::of_pool(&self.pool);
        for chunk in blobs.chunks(CHUNK) {
            let statement = format!(
                "INSERT INTO blobs (hash, size, content) VALUES {} \
                 ON CONFLICT (hash) DO NOTHING",
                marks.rows(chunk.len(), 3)
            );
            let mut query = sqlx::query(&statement);
            for (hash, content) in chunk {
                query = query
                    .bind(hash.as_str())
                    .bind(content.len() as i64)
                    .bind(content.to_vec());
            }
            query.execute(&mut *self.writer.acquire().await?).await?;
        }
        Ok(())
    }

    async fn get(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT content FROM blobs WHERE hash = $1")
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get::<Vec<u8>, _>("content")?),
            None => None,
        })
    }

    async fn get_many(&self, hashes: &[BlobHash]) -> Result<HashMap<BlobHash, Vec<u8>>> {
        let mut found = HashMap::with_capacity(hashes.len());
        let marks = Marks::of_pool(&self.pool);
        for chunk in hashes.chunks(CHUNK) {
            let statement = format!(
                "SELECT hash, content FROM blobs WHERE hash IN ({})",
                marks.list(1, chunk.len())
            );
            let mut query = sqlx::query(&statement);
            for hash in chunk {
                query = query.bind(hash.as_str());
            }
            for row in query.fetch_all(&self.pool).await? {
                found.insert(hash(&row, "hash")?, row.try_get::<Vec<u8>, _>("content")?);
            }
        }
        Ok(found)
    }
}
