//! Uploaded files: the bytes as a content-addressed blob, the row saying whose they are and
//! what they are. Runs attach them by id; only the uploader may read or attach one.

use async_trait::async_trait;
use draftsmith_core::api::Upload;
use draftsmith_core::{AppId, BlobHash, Timestamp, UploadId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::blobs::BlobStore;
use crate::db::SqlStore;
use crate::error::{Result, StoreError};
use crate::sql;

/// A file to store.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// The app it is uploaded to.
    pub app: AppId,
    /// Who uploads it.
    pub owner: UserId,
    /// Its file name.
    pub name: String,
    /// Its media type, already checked.
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Uploaded files.
#[async_trait]
pub trait UploadStore: Send + Sync {
    /// Stores the bytes (as a blob) and records the upload.
    async fn create_upload(&self, new: NewUpload) -> Result<Upload>;
    /// One upload's record; `NotFound("upload")` when there is none.
    async fn upload(&self, id: UploadId) -> Result<Upload>;
    /// The upload's record and its bytes.
    async fn upload_bytes(&self, id: UploadId) -> Result<(Upload, Vec<u8>)>;
}

const COLUMNS: &str = "id, app_id, owner, name, media_type, size, blob_hash, created_at";

fn from_row(row: &AnyRow) -> Result<Upload> {
    Ok(Upload {
        id: sql::id(row, "id")?,
        app_id: sql::id(row, "app_id")?,
        owner: UserId(row.try_get("owner")?),
        name: row.try_get("name")?,
        media_type: row.try_get("media_type")?,
        size: row.try_get("size")?,
        sha256: sql::hash(row, "blob_hash")?.as_str().to_owned(),
        created_at: sql::time(row, "created_at")?,
    })
}

#[async_trait]
impl UploadStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(app = %new.app))]
    async fn create_upload(&self, new: NewUpload) -> Result<Upload> {
        let hash = BlobHash::of(&new.bytes);
        self.blobs.put_many(&[(&hash, &new.bytes)]).await?;
        let upload = Upload {
            id: UploadId::new(),
            app_id: new.app,
            owner: new.owner,
            name: new.name,
            media_type: new.media_type,
            size: new.bytes.len() as i64,
            sha256: hash.as_str().to_owned(),
            created_at: Timestamp::now(),
        };
        sqlx::query(&format!(
            "INSERT INTO uploads ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(upload.id.to_string())
        .bind(upload.app_id.to_string())
        .bind(&upload.owner.0)
        .bind(&upload.name)
        .bind(&upload.media_type)
        .bind(upload.size)
        .bind(hash.as_str())
        .bind(upload.created_at.as_micros())
        .execute(&mut *self.writer.acquire().await?)
        .await?;
        Ok(upload)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(upload = %id))]
    async fn upload(&self, id: UploadId) -> Result<Upload> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM uploads WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("upload"))?;
        from_row(&row)
    }

    async fn upload_bytes(&self, id: UploadId) -> Result<(Upload, Vec<u8>)> {
        let upload = self.upload(id).await?;
        let hash = sql::blob_hash(&upload.sha256)?;
        let bytes = self
            .blobs
            .get(&hash)
            .await?
            .ok_or(StoreError::NotFound("blob"))?;
        Ok((upload, bytes))
    }
}
