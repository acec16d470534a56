//! Checkpoints: immutable pointers to a draft manifest, and the comparisons between them.
//! A checkpoint of a draft revision is one row; a `rejected` one adds the paths its work
//! changed on top of its base revision.

use std::collections::BTreeMap;

use draftsmith_core::api::{Checkpoint, CheckpointKind, DraftFile, FilesChanged};
use draftsmith_core::{AppId, BlobHash, RunId, Timestamp, UserId};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::drafts::manifest_at;
use crate::{Manifest, Result, StoreError};

/// A path a detached checkpoint changed: its new blob and size, or `None` when deleted.
pub type DetachedChange = (String, Option<(BlobHash, i64)>);

/// What a new checkpoint points at.
#[derive(Debug, Clone)]
pub struct NewCheckpoint {
    /// The app.
    pub app: AppId,
    /// Why.
    pub kind: CheckpointKind,
    /// The draft revision (the base revision for detached work).
    pub revision: i64,
    /// The run that takes it.
    pub run: Option<RunId>,
    /// A label for people.
    pub label: String,
    /// Who takes it.
    pub by: UserId,
    /// For work that never became a revision: each changed path and its new content's
    /// blob (already stored), or `None` for a deletion.
    pub detached: Option<Vec<DetachedChange>>,
}

const COLUMNS: &str = "id, app_id, kind, revision, detached, run_id, label, created_by, created_at";

fn from_row(row: &AnyRow) -> Result<Checkpoint> {
    let id: String = row.try_get("id")?;
    let app: String = row.try_get("app_id")?;
    let kind: String = row.try_get("kind")?;
    let run: Option<String> = row.try_get("run_id")?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("checkpoint {id}: {what}"));
    Ok(Checkpoint {
        app_id: app.parse().map_err(|_| corrupt("app_id"))?,
        kind: CheckpointKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        revision: row.try_get("revision")?,
        run_id: run
            .map(|r| r.parse())
            .transpose()
            .map_err(|_| corrupt("run_id"))?,
        label: row.try_get("label")?,
        created_by: UserId(row.try_get("created_by")?),
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        changes: None,
        id,
    })
}

pub(crate) async fn insert(
    tx: &mut Transaction<'static, Any>,
    new: &NewCheckpoint,
) -> Result<Checkpoint> {
    let id = uuid::Uuid::new_v4().to_string();
    let now = Timestamp::now();
    sqlx::query(
        "INSERT INTO checkpoints (id, app_id, kind, revision, detached, run_id, label, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(new.app.to_string())
    .bind(new.kind.as_str())
    .bind(new.revision)
    .bind(i64::from(new.detached.is_some()))
    .bind(new.run.map(|r| r.to_string()))
    .bind(&new.label)
    .bind(&new.by.0)
    .bind(now.as_micros())
    .execute(&mut **tx)
    .await?;
    for (path, value) in new.detached.iter().flatten() {
        sqlx::query("INSERT INTO checkpoint_changes (checkpoint_id, path, blob_hash, size) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(path)
            .bind(value.as_ref().map(|(h, _)| h.as_str().to_owned()))
            .bind(value.as_ref().map(|(_, s)| *s))
            .execute(&mut **tx)
            .await?;
    }
    Ok(Checkpoint {
        id,
        app_id: new.app,
        kind: new.kind,
        revision: new.revision,
        run_id: new.run,
        label: new.label.clone(),
        created_by: new.by.clone(),
        created_at: now,
        changes: None,
    })
}

pub(crate) async fn create(pool: &AnyPool, new: NewCheckpoint) -> Result<Checkpoint> {
    let mut tx = crate::db::begin_write(pool).await?;
    let row = sqlx::query("SELECT draft_revision FROM apps WHERE id = $1")
        .bind(new.app.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("app"))?;
    let current: i64 = row.try_get("draft_revision")?;
    if new.revision < 1 || new.revision > current {
        return Err(StoreError::NotFound("revision"));
    }
    let checkpoint = insert(&mut tx, &new).await?;
    tx.commit().await?;
    Ok(checkpoint)
}

pub(crate) async fn get(pool: &AnyPool, id: &str) -> Result<Checkpoint> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM checkpoints WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::NotFound("checkpoint"))?;
    from_row(&row)
}

pub(crate) async fn list(
    pool: &AnyPool,
    app: AppId,
    limit: i64,
    before: Option<(i64, String)>,
) -> Result<Vec<Checkpoint>> {
    let (micros, id) = before.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM checkpoints WHERE app_id = $1 \
         AND (created_at < $2 OR (created_at = $2 AND id < $3) OR $3 = '') \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(app.to_string())
    .bind(micros)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The manifest a checkpoint points at.
pub(crate) async fn manifest(pool: &AnyPool, checkpoint: &Checkpoint) -> Result<Manifest> {
    let mut manifest = manifest_at(pool, checkpoint.app_id, checkpoint.revision).await?;
    let rows = sqlx::query(
        "SELECT path, blob_hash, size FROM checkpoint_changes WHERE checkpoint_id = $1",
    )
    .bind(&checkpoint.id)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(manifest);
    }
    let mut files: BTreeMap<String, DraftFile> = manifest
        .files
        .into_iter()
        .map(|f| (f.path.clone(), f))
        .collect();
    for row in &rows {
        let path: String = row.try_get("path")?;
        let hash: Option<String> = row.try_get("blob_hash")?;
        match hash {
            Some(hash) => {
                let sha256 = BlobHash::parse(&hash)
                    .ok_or_else(|| StoreError::Corrupt(format!("blob hash {hash}")))?;
                let size = row.try_get::<Option<i64>, _>("size")?.unwrap_or_default();
                files.insert(path.clone(), DraftFile { path, size, sha256 });
            }
            None => {
                files.remove(&path);
            }
        }
    }
    manifest.files = files.into_values().collect();
    Ok(manifest)
}

/// What differs between two manifests, by path.
pub fn diff_manifests(from: &Manifest, to: &Manifest) -> FilesChanged {
    let old: BTreeMap<&str, &BlobHash> = from
        .files
        .iter()
        .map(|f| (f.path.as_str(), &f.sha256))
        .collect();
    let new: BTreeMap<&str, &BlobHash> = to
        .files
        .iter()
        .map(|f| (f.path.as_str(), &f.sha256))
        .collect();
    let mut changes = FilesChanged::default();
    for (path, hash) in &new {
        match old.get(path) {
            None => changes.added.push((*path).to_owned()),
            Some(previous) if previous != hash => changes.modified.push((*path).to_owned()),
            Some(_) => {}
        }
    }
    changes.deleted = old
        .keys()
        .filter(|p| !new.contains_key(*p))
        .map(|p| (*p).to_owned())
        .collect();
    changes
}

/// What the draft's revisions `(from, to]` changed, net, read from the change log alone.
pub(crate) async fn changes_between(
    pool: &AnyPool,
    app: AppId,
    from: i64,
    to: i64,
) -> Result<FilesChanged> {
    let rows = sqlx::query(
        "SELECT path, old_hash, new_hash FROM draft_changes \
         WHERE app_id = $1 AND revision > $2 AND revision <= $3 ORDER BY path, revision",
    )
    .bind(app.to_string())
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let mut net: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for row in &rows {
        let path: String = row.try_get("path")?;
        let old: Option<String> = row.try_get("old_hash")?;
        let new: Option<String> = row.try_get("new_hash")?;
        net.entry(path)
            .and_modify(|e| e.1 = new.clone())
            .or_insert((old, new));
    }
    let mut changes = FilesChanged::default();
    for (path, (old, new)) in net {
        match (old, new) {
            (None, Some(_)) => changes.added.push(path),
            (Some(_), None) => changes.deleted.push(path),
            (Some(a), Some(b)) if a != b => changes.modified.push(path),
            _ => {}
        }
    }
    Ok(changes)
}
