//! Releases and publications: a release is written once with its files (blobs stored
//! before the transaction), and an app's publication is one row whose `release_id` is the
//! live release, so promoting, rolling back and unpublishing are each one update.

use async_trait::async_trait;
use draftsmith_core::publish::{Release, ReleaseFile, Visibility};
use draftsmith_core::{AppId, BlobHash, Timestamp, UserId};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::db::SqlStore;
use crate::error::{Result, StoreError};
use crate::sql::{self, Tx};

/// One compressed form of a file, stored as its own blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The compressed bytes' blob.
    pub hash: BlobHash,
    /// Their size.
    pub size: i64,
}

/// A file of a release as the server needs it: where its bytes and their compressed forms
/// are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReleaseFile {
    /// What the API shows.
    pub file: ReleaseFile,
    /// Its gzip form, when compressing it paid.
    pub gzip: Option<Encoded>,
    /// Its brotli form, when compressing it paid.
    pub brotli: Option<Encoded>,
}

/// A release to record; its blobs are already stored.
#[derive(Debug, Clone)]
pub struct NewRelease {
    /// The app.
    pub app: AppId,
    /// The draft revision built.
    pub revision: i64,
    /// The checkpoint built, when one was named.
    pub checkpoint_id: Option<String>,
    /// The build output's tail.
    pub build_log: String,
    /// What it serves.
    pub files: Vec<StoredReleaseFile>,
    /// Who publishes.
    pub by: UserId,
    /// Whether it goes live in the same transaction.
    pub promote: bool,
}

/// An app's publication row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicationRecord {
    /// The app.
    pub app: AppId,
    /// Its slug (the published path).
    pub slug: String,
    /// The live release, if any.
    pub release_id: Option<String>,
    /// Who may open it.
    pub visibility: Visibility,
    /// SHA-256 (hex) of the access key of a private publication.
    pub key_hash: Option<String>,
}

/// The release aggregate: releases and publication pointers.
#[async_trait]
pub trait ReleaseStore: Send + Sync {
    /// Records a release (numbered after the app's last one), live at once when asked.
    async fn create_release(&self, new: NewRelease) -> Result<Release>;
    /// An app's releases, newest first, without their files.
    async fn releases(&self, app: AppId) -> Result<Vec<Release>>;
    /// One release, without its files.
    async fn release(&self, id: &str) -> Result<Release>;
    /// A release's files, by path.
    async fn release_files(&self, id: &str) -> Result<Vec<StoredReleaseFile>>;
    /// Makes `release` (one of `app`'s) the live one.
    async fn promote_release(&self, app: AppId, release: &str) -> Result<PublicationRecord>;
    /// Takes the app offline; its releases stay.
    async fn unpublish(&self, app: AppId) -> Result<PublicationRecord>;
    /// Sets who may open the app.
    async fn set_visibility(
        &self,
        app: AppId,
        visibility: Visibility,
        key_hash: Option<String>,
    ) -> Result<PublicationRecord>;
    /// The app's publication (unpublished and public when it never had one).
    async fn publication(&self, app: AppId) -> Result<PublicationRecord>;
    /// The publication served at `slug`, if that app exists.
    async fn publication_by_slug(&self, slug: &str) -> Result<Option<PublicationRecord>>;
}

const COLUMNS: &str = "r.id, r.app_id, r.number, r.revision, r.checkpoint_id, r.build_log, \
                       r.file_count, r.size, r.created_by, r.created_at, \
                       CAST(CASE WHEN p.release_id = r.id THEN 1 ELSE 0 END AS BIGINT) AS live";
const FROM: &str = "releases r LEFT JOIN publications p ON p.app_id = r.app_id";

fn release_from_row(row: &AnyRow) -> Result<Release> {
    let live: i64 = row.try_get("live")?;
    Ok(Release {
        id: row.try_get("id")?,
        app_id: sql::id(row, "app_id")?,
        number: row.try_get("number")?,
        revision: row.try_get("revision")?,
        checkpoint_id: row.try_get("checkpoint_id")?,
        build_log: row.try_get("build_log")?,
        file_count: row.try_get("file_count")?,
        size: row.try_get("size")?,
        created_by: UserId(row.try_get("created_by")?),
        created_at: sql::time(row, "created_at")?,
        live: live == 1,
        files: None,
    })
}

fn file_from_row(row: &AnyRow) -> Result<StoredReleaseFile> {
    let encoded = |h: &str, s: &str| -> Result<Option<Encoded>> {
        Ok(
            match (sql::hash_opt(row, h)?, row.try_get::<Option<i64>, _>(s)?) {
                (Some(hash), Some(size)) => Some(Encoded { hash, size }),
                _ => None,
            },
        )
    };
    Ok(StoredReleaseFile {
        file: ReleaseFile {
            path: row.try_get("path")?,
            size: row.try_get("size")?,
            sha256: sql::hash(row, "blob_hash")?,
            content_type: row.try_get("content_type")?,
        },
        gzip: encoded("gzip_hash", "gzip_size")?,
        brotli: encoded("br_hash", "br_size")?,
    })
}

fn publication_from_row(row: &AnyRow) -> Result<PublicationRecord> {
    Ok(PublicationRecord {
        app: sql::id(row, "id")?,
        slug: row.try_get("slug")?,
        release_id: row.try_get("release_id")?,
        visibility: sql::decode_opt(row, "visibility", Visibility::parse)?
            .unwrap_or(Visibility::Public),
        key_hash: row.try_get("key_hash")?,
    })
}

const PUBLICATION: &str = "SELECT a.id, a.slug, p.release_id, p.visibility, p.key_hash \
                           FROM apps a LEFT JOIN publications p ON p.app_id = a.id";

async fn publication_of(pool: &AnyPool, app: AppId) -> Result<PublicationRecord> {
    let row = sqlx::query(&format!("{PUBLICATION} WHERE a.id = $1"))
        .bind(app.to_string())
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::NotFound("app"))?;
    publication_from_row(&row)
}

/// A change to an app's publication row.
enum Change {
    /// The live release (`None` takes the app offline).
    Live(Option<String>),
    /// Who may open it, and the key's hash for `private`.
    Visibility(Visibility, Option<String>),
}

/// Creates the app's publication row when missing, then applies `change` to it.
async fn update_publication(
    store: &SqlStore,
    app: AppId,
    change: Change,
) -> Result<PublicationRecord> {
    let mut tx = store.writer.begin().await?;
    ensure_publication(&mut tx, app).await?;
    let now = Timestamp::now().as_micros();
    let query = match change {
        Change::Live(release) => {
            sqlx::query("UPDATE publications SET release_id = $2, updated_at = $3 WHERE app_id = $1")
                .bind(app.to_string())
                .bind(release)
                .bind(now)
        }
        Change::Visibility(visibility, key_hash) => sqlx::query(
            "UPDATE publications SET visibility = $2, key_hash = $3, updated_at = $4 WHERE app_id = $1",
        )
        .bind(app.to_string())
        .bind(visibility.as_str())
        .bind(key_hash)
        .bind(now),
    };
    query.execute(&mut *tx).await?;
    tx.commit().await?;
    publication_of(&store.pool, app).await
}

async fn ensure_publication(tx: &mut Tx, app: AppId) -> Result<()> {
    let exists = sqlx::query("SELECT 1 AS one FROM apps WHERE id = $1")
        .bind(app.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound("app"));
    }
    sqlx::query(
        "INSERT INTO publications (app_id, release_id, visibility, key_hash, updated_at) \
         VALUES ($1, NULL, 'public', NULL, $2) ON CONFLICT (app_id) DO NOTHING",
    )
    .bind(app.to_string())
    .bind(Timestamp::now().as_micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl ReleaseStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(app = %new.app, revision = new.revision, promote = new.promote))]
    async fn create_release(&self, new: NewRelease) -> Result<Release> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = Timestamp::now();
        let size: i64 = new.files.iter().map(|f| f.file.size).sum();
        let mut tx = self.writer.begin().await?;
        ensure_publication(&mut tx, new.app).await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(MAX(number), 0) AS BIGINT) AS last FROM releases WHERE app_id = $1",
        )
        .bind(new.app.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let number = row.try_get::<i64, _>("last")? + 1;
        sqlx::query(
            "INSERT INTO releases (id, app_id, number, revision, checkpoint_id, build_log, \
             file_count, size, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(new.app.to_string())
        .bind(number)
        .bind(new.revision)
        .bind(new.checkpoint_id.clone())
        .bind(&new.build_log)
        .bind(new.files.len() as i64)
        .bind(size)
        .bind(&new.by.0)
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await?;
        for f in &new.files {
            sqlx::query(
                "INSERT INTO release_files (release_id, path, blob_hash, size, content_type, \
                 gzip_hash, gzip_size, br_hash, br_size) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&id)
            .bind(&f.file.path)
            .bind(f.file.sha256.as_str())
            .bind(f.file.size)
            .bind(&f.file.content_type)
            .bind(f.gzip.as_ref().map(|e| e.hash.as_str().to_owned()))
            .bind(f.gzip.as_ref().map(|e| e.size))
            .bind(f.brotli.as_ref().map(|e| e.hash.as_str().to_owned()))
            .bind(f.brotli.as_ref().map(|e| e.size))
            .execute(&mut *tx)
            .await?;
        }
        if new.promote {
            sqlx::query(
                "UPDATE publications SET release_id = $2, updated_at = $3 WHERE app_id = $1",
            )
            .bind(new.app.to_string())
            .bind(&id)
            .bind(now.as_micros())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.release(&id).await
    }

    async fn releases(&self, app: AppId) -> Result<Vec<Release>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE r.app_id = $1 ORDER BY r.number DESC"
        ))
        .bind(app.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(release_from_row).collect()
    }

    async fn release(&self, id: &str) -> Result<Release> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM {FROM} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("release"))?;
        release_from_row(&row)
    }

    async fn release_files(&self, id: &str) -> Result<Vec<StoredReleaseFile>> {
        let rows = sqlx::query(
            "SELECT path, blob_hash, size, content_type, gzip_hash, gzip_size, br_hash, br_size \
             FROM release_files WHERE release_id = $1 ORDER BY path",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app, release = release))]
    async fn promote_release(&self, app: AppId, release: &str) -> Result<PublicationRecord> {
        let owned = sqlx::query("SELECT 1 AS one FROM releases WHERE id = $1 AND app_id = $2")
            .bind(release)
            .bind(app.to_string())
            .fetch_optional(&self.pool)
            .await?;
        if owned.is_none() {
            return Err(StoreError::NotFound("release"));
        }
        update_publication(self, app, Change::Live(Some(release.to_owned()))).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app))]
    async fn unpublish(&self, app: AppId) -> Result<PublicationRecord> {
        update_publication(self, app, Change::Live(None)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app, visibility = visibility.as_str()))]
    async fn set_visibility(
        &self,
        app: AppId,
        visibility: Visibility,
        key_hash: Option<String>,
    ) -> Result<PublicationRecord> {
        update_publication(self, app, Change::Visibility(visibility, key_hash)).await
    }

    async fn publication(&self, app: AppId) -> Result<PublicationRecord> {
        publication_of(&self.pool, app).await
    }

    async fn publication_by_slug(&self, slug: &str) -> Result<Option<PublicationRecord>> {
        let row = sqlx::query(&format!("{PUBLICATION} WHERE a.slug = $1"))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(publication_from_row).transpose()
    }
}
