//! The checkpoint aggregate: immutable pointers to a draft manifest, the comparisons
//! between them, and restoring the draft to one. A checkpoint of a draft revision is one
//! row; a `rejected` one adds the paths its work changed on top of its base revision.

use std::collections::BTreeMap;

use async_trait::async_trait;
use draftsmith_core::api::{Checkpoint, CheckpointKind, DraftFile, FilesChanged};
use draftsmith_core::{AppId, BlobHash, RunId, UserId};
use sqlx::Row;

use crate::checkpoint_log::{self, NewCheckpoint};
use crate::db::{Backend, SqlStore};
use crate::draft_writes;
use crate::drafts::{self, DraftWrite, Manifest};
use crate::error::{Result, StoreError};
use crate::restore;
use crate::sql;

/// Checkpoints of an app's draft.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// Takes a checkpoint of one of the draft's revisions.
    async fn create_checkpoint(&self, new: NewCheckpoint) -> Result<Checkpoint>;
    /// One checkpoint.
    async fn checkpoint(&self, id: &str) -> Result<Checkpoint>;
    /// An app's checkpoints, newest first, before the `(created_at, id)` cursor.
    async fn checkpoints(
        &self,
        app: AppId,
        limit: i64,
        before: Option<(i64, String)>,
    ) -> Result<Vec<Checkpoint>>;
    /// The checkpoint a run took of `kind`, if any.
    async fn run_checkpoint(&self, run: RunId, kind: CheckpointKind) -> Result<Option<Checkpoint>>;
    /// The manifest a checkpoint points at.
    async fn checkpoint_manifest(&self, checkpoint: &Checkpoint) -> Result<Manifest>;
    /// What the draft's revisions `(from, to]` changed, net.
    async fn changes_between(&self, app: AppId, from: i64, to: i64) -> Result<FilesChanged>;
    /// Makes the draft equal to `target`'s manifest as a new revision after a `restore`
    /// checkpoint of what it replaces; [`StoreError::RunActive`] while a run is active.
    /// It reads and writes only what differs (the change log since the checkpoint's
    /// revision and its detached paths), never the whole draft.
    async fn restore_to(
        &self,
        target: &Checkpoint,
        author: &UserId,
        label: &str,
    ) -> Result<(DraftWrite, Checkpoint)>;
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

/// Classifies each path's net `(old, new)` hash.
fn net_changes(net: BTreeMap<String, (Option<String>, Option<String>)>) -> FilesChanged {
    let mut changes = FilesChanged::default();
    for (path, (old, new)) in net {
        match (old, new) {
            (None, Some(_)) => changes.added.push(path),
            (Some(_), None) => changes.deleted.push(path),
            (Some(a), Some(b)) if a != b => changes.modified.push(path),
            _ => {}
        }
    }
    changes
}

#[async_trait]
impl CheckpointStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(app = %new.app, kind = new.kind.as_str()))]
    async fn create_checkpoint(&self, new: NewCheckpoint) -> Result<Checkpoint> {
        let mut tx = self.writer.begin().await?;
        let current = draft_writes::lock_app(&mut tx, new.app).await?;
        if new.revision < 1 || new.revision > current {
            return Err(StoreError::NotFound("revision"));
        }
        let checkpoint = checkpoint_log::insert(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(checkpoint)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(checkpoint = id))]
    async fn checkpoint(&self, id: &str) -> Result<Checkpoint> {
        checkpoint_log::get(&self.pool, id).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app))]
    async fn checkpoints(
        &self,
        app: AppId,
        limit: i64,
        before: Option<(i64, String)>,
    ) -> Result<Vec<Checkpoint>> {
        checkpoint_log::list(&self.pool, app, limit, before).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(run = %run, kind = kind.as_str()))]
    async fn run_checkpoint(&self, run: RunId, kind: CheckpointKind) -> Result<Option<Checkpoint>> {
        checkpoint_log::of_kind(&self.pool, run, kind).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(checkpoint = %checkpoint.id))]
    async fn checkpoint_manifest(&self, checkpoint: &Checkpoint) -> Result<Manifest> {
        let mut manifest =
            drafts::manifest_at(&self.pool, checkpoint.app_id, checkpoint.revision).await?;
        let rows = sqlx::query(
            "SELECT path, blob_hash, size FROM checkpoint_changes WHERE checkpoint_id = $1",
        )
        .bind(&checkpoint.id)
        .fetch_all(&self.pool)
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
            match sql::hash_opt(row, "blob_hash")? {
                Some(sha256) => {
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

    /// Read from the change log alone.
    #[tracing::instrument(level = "debug", skip_all, fields(app = %app, from = from, to = to))]
    async fn changes_between(&self, app: AppId, from: i64, to: i64) -> Result<FilesChanged> {
        let rows = sqlx::query(
            "SELECT path, old_hash, new_hash FROM draft_changes \
             WHERE app_id = $1 AND revision > $2 AND revision <= $3 ORDER BY path, revision",
        )
        .bind(app.to_string())
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
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
        Ok(net_changes(net))
    }

    /// Always a new revision (even when nothing differs). The app row is locked first, so
    /// a run cannot start in between.
    #[tracing::instrument(level = "debug", skip_all, fields(checkpoint = %target.id))]
    async fn restore_to(
        &self,
        target: &Checkpoint,
        author: &UserId,
        label: &str,
    ) -> Result<(DraftWrite, Checkpoint)> {
        if self.backend == Backend::Postgres {
            return restore::restore_on(&mut *self.writer.acquire().await?, target, author, label)
                .await;
        }
        let mut tx = self.writer.begin().await?;
        let restored = restore::restore_in(&mut tx, target, author, label).await?;
        tx.commit().await?;
        Ok(restored)
    }
}
