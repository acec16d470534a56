//! Writing drafts inside a transaction: the app row is locked first, every changed path is
//! recorded with its old and new value, and a revision row names the author. The callers
//! (draft writes, app creation, restores, landings) compose these in their own transaction.

use std::collections::BTreeMap;

use draftsmith_core::{AppId, BlobHash, Timestamp, UserId};
use sqlx::Row;

use crate::blobs::BlobStore;
use crate::drafts::{DraftWrite, FileChange, Manifest, file_from_row};
use crate::error::{Result, StoreError};
use crate::sql::Tx;

/// What a list of changes wants each path to become (the last change to a path wins, as
/// if applied in order), with every new content already in the blob store.
pub(crate) type Wanted = BTreeMap<String, Option<(BlobHash, i64)>>;

/// Stores the changes' contents as blobs and reduces them to what each path becomes.
pub(crate) async fn store_changes(
    blobs: &dyn BlobStore,
    changes: Vec<FileChange>,
) -> Result<Wanted> {
    let mut contents: BTreeMap<String, Option<(BlobHash, Vec<u8>)>> = BTreeMap::new();
    for change in changes {
        let value = change.content.map(|c| (BlobHash::of(&c), c));
        contents.insert(change.path.into_string(), value);
    }
    let refs: Vec<(&BlobHash, &[u8])> = contents
        .values()
        .flatten()
        .map(|(h, c)| (h, c.as_slice()))
        .collect();
    blobs.put_many(&refs).await?;
    Ok(contents
        .into_iter()
        .map(|(path, value)| (path, value.map(|(h, c)| (h, c.len() as i64))))
        .collect())
}

/// Locks the app's row for the rest of the transaction and reads its draft revision. Run
/// creation, restores and draft writes all start here, so they are ordered per app.
pub(crate) async fn lock_app(tx: &mut Tx, app: AppId) -> Result<i64> {
    let row = sqlx::query(
        "UPDATE apps SET updated_at = updated_at WHERE id = $1 RETURNING draft_revision",
    )
    .bind(app.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("app"))?;
    Ok(row.try_get("draft_revision")?)
}

/// Moves the app's draft to `revision`, recording who made it.
async fn set_revision(tx: &mut Tx, app: AppId, revision: i64, author: &UserId) -> Result<()> {
    let now = Timestamp::now().as_micros();
    sqlx::query("UPDATE apps SET draft_revision = $2, updated_at = $3 WHERE id = $1")
        .bind(app.to_string())
        .bind(revision)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    record_revision(tx, app, revision, author, now).await
}

/// Applies `wanted` as the next revision. The app row is locked before anything is read,
/// and the compare with `expected` is what makes stale writers fail
/// ([`StoreError::RevisionConflict`]). When nothing differs, nothing is written and the
/// revision stays.
pub(crate) async fn write_in_tx(
    tx: &mut Tx,
    app: AppId,
    expected: Option<i64>,
    wanted: &Wanted,
    author: &UserId,
) -> Result<DraftWrite> {
    let current = lock_app(tx, app).await?;
    if expected.is_some_and(|e| e != current) {
        return Err(StoreError::RevisionConflict { current });
    }
    let mut result = DraftWrite::empty(current + 1);
    for (path, new) in wanted {
        let old = sqlx::query(
            "SELECT path, blob_hash, size FROM draft_files WHERE app_id = $1 AND path = $2",
        )
        .bind(app.to_string())
        .bind(path)
        .fetch_optional(&mut **tx)
        .await?;
        let old = match old {
            Some(row) => {
                let file = file_from_row(&row)?;
                Some((file.sha256, file.size))
            }
            None => None,
        };
        let new = new.as_ref().map(|(h, size)| (h, *size));
        apply(tx, app, &mut result, path, old, new).await?;
    }
    if result.is_empty() {
        result.revision = current;
        return Ok(result);
    }
    set_revision(tx, app, result.revision, author).await?;
    Ok(result)
}

/// Makes the draft equal to `target` as the already claimed `revision` (see
/// [`claim_revision`]), recording each path that differs.
pub(crate) async fn replace_in_tx(
    tx: &mut Tx,
    app: AppId,
    revision: i64,
    target: &Manifest,
    author: &UserId,
) -> Result<DraftWrite> {
    let rows = sqlx::query("SELECT path, blob_hash, size FROM draft_files WHERE app_id = $1")
        .bind(app.to_string())
        .fetch_all(&mut **tx)
        .await?;
    let mut current: BTreeMap<String, (BlobHash, i64)> = BTreeMap::new();
    for row in &rows {
        let file = file_from_row(row)?;
        current.insert(file.path, (file.sha256, file.size));
    }
    let mut result = DraftWrite::empty(revision);
    for file in &target.files {
        let old = current.remove(&file.path);
        let new = Some((&file.sha256, file.size));
        apply(tx, app, &mut result, &file.path, old, new).await?;
    }
    for (path, old) in current {
        apply(tx, app, &mut result, &path, Some(old), None).await?;
    }
    let now = Timestamp::now().as_micros();
    record_revision(tx, app, revision, author, now).await?;
    Ok(result)
}

/// Moves the draft one revision on whatever follows, and answers the new revision.
pub(crate) async fn claim_revision(tx: &mut Tx, app: AppId) -> Result<i64> {
    let row = sqlx::query(
        "UPDATE apps SET draft_revision = draft_revision + 1, updated_at = $2 WHERE id = $1 \
         RETURNING draft_revision",
    )
    .bind(app.to_string())
    .bind(Timestamp::now().as_micros())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("app"))?;
    Ok(row.try_get("draft_revision")?)
}

/// The files of a new app's revision 1 (its row already inserted at revision 1).
pub(crate) async fn first_revision(
    tx: &mut Tx,
    app: AppId,
    files: &[(String, BlobHash, i64)],
    author: &UserId,
    now: i64,
) -> Result<()> {
    record_revision(tx, app, 1, author, now).await?;
    let mut result = DraftWrite::empty(1);
    for (path, hash, size) in files {
        apply(tx, app, &mut result, path, None, Some((hash, *size))).await?;
    }
    Ok(())
}

/// Moves `path` from `old` to `new` at `result.revision`, noting it in `result`; nothing
/// when they are the same.
async fn apply(
    tx: &mut Tx,
    app: AppId,
    result: &mut DraftWrite,
    path: &str,
    old: Option<(BlobHash, i64)>,
    new: Option<(&BlobHash, i64)>,
) -> Result<()> {
    match (&old, new) {
        (None, None) => return Ok(()),
        (Some((old_hash, _)), Some((hash, _))) if old_hash == hash => return Ok(()),
        (_, Some((hash, size))) => {
            sqlx::query(
                "INSERT INTO draft_files (app_id, path, blob_hash, size) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (app_id, path) DO UPDATE SET blob_hash = excluded.blob_hash, \
                 size = excluded.size",
            )
            .bind(app.to_string())
            .bind(path)
            .bind(hash.as_str())
            .bind(size)
            .execute(&mut **tx)
            .await?;
            match old {
                Some(_) => result.changes.modified.push(path.to_owned()),
                None => result.changes.added.push(path.to_owned()),
            }
        }
        (Some(_), None) => {
            sqlx::query("DELETE FROM draft_files WHERE app_id = $1 AND path = $2")
                .bind(app.to_string())
                .bind(path)
                .execute(&mut **tx)
                .await?;
            result.changes.deleted.push(path.to_owned());
        }
    }
    let old = old.as_ref().map(|(h, s)| (h, *s));
    record_change(tx, app, result.revision, path, old, new).await
}

async fn record_change(
    tx: &mut Tx,
    app: AppId,
    revision: i64,
    path: &str,
    old: Option<(&BlobHash, i64)>,
    new: Option<(&BlobHash, i64)>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO draft_changes (app_id, revision, path, old_hash, old_size, new_hash, new_size) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(app.to_string())
    .bind(revision)
    .bind(path)
    .bind(old.map(|(h, _)| h.as_str().to_owned()))
    .bind(old.map(|(_, s)| s))
    .bind(new.map(|(h, _)| h.as_str().to_owned()))
    .bind(new.map(|(_, s)| s))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn record_revision(
    tx: &mut Tx,
    app: AppId,
    revision: i64,
    author: &UserId,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO draft_revisions (app_id, revision, author, created_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(app.to_string())
    .bind(revision)
    .bind(&author.0)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
