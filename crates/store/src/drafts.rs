//! Drafts as manifests over content-addressed blobs: the types a draft is read and written
//! in, and the reading. The current manifest is a table of rows; each revision records only
//! the paths it changed (with their old values), so any earlier revision is rebuilt by
//! undoing later changes. Writing is in [`crate::draft_writes`].

use std::collections::BTreeMap;

use draftsmith_core::api::{DraftFile, FilesChanged};
use draftsmith_core::{AppId, DraftPath};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::error::{Result, StoreError};
use crate::sql;

/// A draft's file set at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The revision it describes.
    pub revision: i64,
    /// Files sorted by path.
    pub files: Vec<DraftFile>,
}

pub use draftsmith_core::FileChange;

/// What a draft write did: the revision it made and the paths it changed, in the shape
/// the API answers and `draft.synced` carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftWrite {
    /// Revision after the write; equal to the previous one when nothing changed.
    pub revision: i64,
    /// Paths created, changed and removed.
    pub changes: FilesChanged,
}

impl DraftWrite {
    /// A write at `revision` that has changed nothing yet.
    pub(crate) fn empty(revision: i64) -> Self {
        Self {
            revision,
            changes: FilesChanged::default(),
        }
    }

    /// Whether it changed any path.
    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// A `draft_files` row (`path, blob_hash, size`).
pub(crate) fn file_from_row(row: &AnyRow) -> Result<DraftFile> {
    Ok(DraftFile {
        path: row.try_get("path")?,
        size: row.try_get("size")?,
        sha256: sql::hash(row, "blob_hash")?,
    })
}

/// The app's draft revision; [`StoreError::NotFound`] for a missing app.
pub(crate) async fn draft_revision(pool: &AnyPool, app: AppId) -> Result<i64> {
    let row = sqlx::query("SELECT draft_revision FROM apps WHERE id = $1")
        .bind(app.to_string())
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::NotFound("app"))?;
    Ok(row.try_get("draft_revision")?)
}

async fn current_files(pool: &AnyPool, app: AppId) -> Result<BTreeMap<String, DraftFile>> {
    let files = sql::json_rows(sql::is_sqlite(pool), "path, blob_hash, size");
    let json: String = sqlx::query(&format!(
        "SELECT {files} AS files FROM draft_files WHERE app_id = $1"
    ))
    .bind(app.to_string())
    .fetch_one(pool)
    .await?
    .try_get("files")?;
    Ok(files_of(&json)?
        .into_iter()
        .map(|file| (file.path.clone(), file))
        .collect())
}

/// The draft files of a [`sql::json_rows`] aggregate of `path, blob_hash, size`.
fn files_of(json: &str) -> Result<Vec<DraftFile>> {
    sql::from_json_rows::<(String, String, i64)>(json)?
        .into_iter()
        .map(|(path, hash, size)| {
            let sha256 = sql::blob_hash(&hash)?;
            Ok(DraftFile { path, size, sha256 })
        })
        .collect()
}

/// The current manifest, its revision and files read in one statement: one round trip
/// (a run reads it as it starts), and one snapshot, where two reads could pair a revision
/// with the files of a draft write that committed between them.
pub(crate) async fn current_manifest(pool: &AnyPool, app: AppId) -> Result<Manifest> {
    let files = sql::json_rows(sql::is_sqlite(pool), "f.path, f.blob_hash, f.size");
    let row = sqlx::query(&format!(
        "SELECT a.draft_revision, (SELECT {files} FROM draft_files f WHERE f.app_id = a.id) \
         AS files FROM apps a WHERE a.id = $1"
    ))
    .bind(app.to_string())
    .fetch_optional(pool)
    .await?
    .ok_or(StoreError::NotFound("app"))?;
    let revision = row.try_get("draft_revision")?;
    let mut files = files_of(&row.try_get::<String, _>("files")?)?;
    // By path in Rust's order, as everywhere else (not the database's collation).
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Manifest { revision, files })
}

/// The manifest as it was at `revision`.
pub(crate) async fn manifest_at(pool: &AnyPool, app: AppId, revision: i64) -> Result<Manifest> {
    let current = draft_revision(pool, app).await?;
    if revision < 1 || revision > current {
        return Err(StoreError::NotFound("revision"));
    }
    let mut files = current_files(pool, app).await?;
    // Undo every later revision, newest first, to arrive at `revision`.
    let rows = sqlx::query(
        "SELECT path, old_hash, old_size FROM draft_changes \
         WHERE app_id = $1 AND revision > $2 ORDER BY revision DESC",
    )
    .bind(app.to_string())
    .bind(revision)
    .fetch_all(pool)
    .await?;
    for row in &rows {
        let path: String = row.try_get("path")?;
        match sql::hash_opt(row, "old_hash")? {
            Some(sha256) => {
                let size = row.try_get::<Option<i64>, _>("old_size")?;
                let file = DraftFile {
                    path: path.clone(),
                    size: size.unwrap_or_default(),
                    sha256,
                };
                files.insert(path, file);
            }
            None => {
                files.remove(&path);
            }
        }
    }
    Ok(Manifest {
        revision,
        files: files.into_values().collect(),
    })
}

/// One file of the current draft with its content, and the draft's revision.
pub(crate) async fn read_file(
    pool: &AnyPool,
    app: AppId,
    path: &DraftPath,
) -> Result<(i64, DraftFile, Vec<u8>)> {
    let row = sqlx::query(
        "SELECT a.draft_revision, f.path, f.blob_hash, f.size, b.content \
         FROM apps a JOIN draft_files f ON f.app_id = a.id JOIN blobs b ON b.hash = f.blob_hash \
         WHERE a.id = $1 AND f.path = $2",
    )
    .bind(app.to_string())
    .bind(path.as_str())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        // Tell a missing app from a missing file.
        draft_revision(pool, app).await?;
        return Err(StoreError::NotFound("file"));
    };
    Ok((
        row.try_get("draft_revision")?,
        file_from_row(&row)?,
        row.try_get("content")?,
    ))
}
