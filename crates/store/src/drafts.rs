//! Drafts as manifests over content-addressed blobs. The current manifest is a table of
//! rows; each revision records only the paths it changed (with their old values), so
//! writing revision N+1 costs what changed, and any earlier revision is rebuilt by undoing
//! later changes.

use std::collections::BTreeMap;

use draftsmith_core::api::{App, DraftFile};
use draftsmith_core::{AppId, BlobHash, DraftPath, Timestamp, UserId};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::db::{SqlStore, app_from_row};
use crate::{DraftWrite, FileChange, Manifest, NewApp, Result, Store, StoreError};

/// How many slug suffixes to try before giving up on a name.
const SLUG_ATTEMPTS: usize = 50;

pub(crate) async fn create_app(store: &SqlStore, new: NewApp) -> Result<App> {
    let hashed: Vec<(DraftPath, BlobHash, Vec<u8>)> = new
        .files
        .into_iter()
        .map(|(path, content)| (path, BlobHash::of(&content), content))
        .collect();
    let refs: Vec<(&BlobHash, &[u8])> = hashed.iter().map(|(_, h, c)| (h, c.as_slice())).collect();
    store.blobs().put_many(&refs).await?;

    let id = AppId::new();
    let now = Timestamp::now().as_micros();
    let mut tx = crate::db::begin_write(&store.pool).await?;
    let slug = free_slug(&mut tx, &new.slug).await?;
    sqlx::query(
        "INSERT INTO apps (id, slug, name, template, owner_user_id, selected_agent_id, \
         draft_revision, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, NULL, 1, $6, $6)",
    )
    .bind(id.to_string())
    .bind(&slug)
    .bind(&new.name)
    .bind(&new.template)
    .bind(&new.owner.0)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    record_revision(&mut tx, id, 1, &new.owner, now).await?;
    for (path, hash, content) in &hashed {
        let size = content.len() as i64;
        upsert_file(&mut tx, id, path.as_str(), hash, size).await?;
        record_change(&mut tx, id, 1, path.as_str(), None, Some((hash, size))).await?;
    }
    let row = sqlx::query(
        "SELECT id, slug, name, template, owner_user_id, selected_agent_id, \
                           draft_revision, created_at, updated_at FROM apps WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_one(&mut *tx)
    .await?;
    let app = app_from_row(&row)?;
    tx.commit().await?;
    Ok(app)
}

/// Picks `wanted`, or `wanted-2`, `wanted-3`, … whichever is free. The UNIQUE constraint
/// still guards a race between two instances.
async fn free_slug(tx: &mut Transaction<'static, Any>, wanted: &str) -> Result<String> {
    let rows = sqlx::query("SELECT slug FROM apps WHERE slug = $1 OR slug LIKE $2")
        .bind(wanted)
        .bind(format!("{wanted}-%"))
        .fetch_all(&mut **tx)
        .await?;
    let taken: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>("slug"))
        .collect::<Result<_, _>>()?;
    if !taken.iter().any(|s| s == wanted) {
        return Ok(wanted.to_owned());
    }
    (2..SLUG_ATTEMPTS + 2)
        .map(|n| format!("{wanted}-{n}"))
        .find(|candidate| !taken.contains(candidate))
        .ok_or_else(|| StoreError::Corrupt(format!("no free slug for {wanted:?}")))
}

pub(crate) async fn current_manifest(pool: &AnyPool, app: AppId) -> Result<Manifest> {
    let revision = draft_revision(pool, app).await?;
    let files = current_files(pool, app).await?;
    Ok(Manifest {
        revision,
        files: files.into_values().collect(),
    })
}

async fn draft_revision(pool: &AnyPool, app: AppId) -> Result<i64> {
    let row = sqlx::query("SELECT draft_revision FROM apps WHERE id = $1")
        .bind(app.to_string())
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::NotFound("app"))?;
    Ok(row.try_get("draft_revision")?)
}

async fn current_files(pool: &AnyPool, app: AppId) -> Result<BTreeMap<String, DraftFile>> {
    let rows = sqlx::query("SELECT path, blob_hash, size FROM draft_files WHERE app_id = $1")
        .bind(app.to_string())
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let path: String = row.try_get("path")?;
            let file = DraftFile {
                sha256: parse_hash(row.try_get("blob_hash")?)?,
                size: row.try_get("size")?,
                path: path.clone(),
            };
            Ok((path, file))
        })
        .collect()
}

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
        let old_hash: Option<String> = row.try_get("old_hash")?;
        match old_hash {
            Some(hash) => {
                let file = DraftFile {
                    path: path.clone(),
                    size: row
                        .try_get::<Option<i64>, _>("old_size")?
                        .unwrap_or_default(),
                    sha256: parse_hash(hash)?,
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

pub(crate) async fn read_file(
    store: &SqlStore,
    app: AppId,
    path: &DraftPath,
) -> Result<(i64, DraftFile, Vec<u8>)> {
    let row = sqlx::query(
        "SELECT a.draft_revision, f.blob_hash, f.size, b.content \
         FROM apps a JOIN draft_files f ON f.app_id = a.id JOIN blobs b ON b.hash = f.blob_hash \
         WHERE a.id = $1 AND f.path = $2",
    )
    .bind(app.to_string())
    .bind(path.as_str())
    .fetch_optional(&store.pool)
    .await?;
    let Some(row) = row else {
        // Tell a missing app from a missing file.
        draft_revision(&store.pool, app).await?;
        return Err(StoreError::NotFound("file"));
    };
    let file = DraftFile {
        path: path.as_str().to_owned(),
        size: row.try_get("size")?,
        sha256: parse_hash(row.try_get("blob_hash")?)?,
    };
    Ok((
        row.try_get("draft_revision")?,
        file,
        row.try_get("content")?,
    ))
}

pub(crate) async fn write_draft(
    store: &SqlStore,
    app: AppId,
    expected: Option<i64>,
    changes: Vec<FileChange>,
    author: &UserId,
) -> Result<DraftWrite> {
    let wanted = store_changes(store, changes).await?;
    let mut tx = crate::db::begin_write(&store.pool).await?;
    let result = write_in_tx(&mut tx, app, expected, &wanted, author).await?;
    tx.commit().await?;
    Ok(result)
}

/// What a list of changes wants each path to become (the last change to a path wins, as
/// if applied in order), with every new content already in the blob store.
pub(crate) type Wanted = BTreeMap<String, Option<(BlobHash, i64)>>;

/// Stores the changes' contents as blobs and reduces them to what each path becomes.
pub(crate) async fn store_changes(store: &SqlStore, changes: Vec<FileChange>) -> Result<Wanted> {
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
    store.blobs().put_many(&refs).await?;
    Ok(contents
        .into_iter()
        .map(|(path, value)| (path, value.map(|(h, c)| (h, c.len() as i64))))
        .collect())
}

/// Applies `wanted` as the next revision inside `tx`. The app row is locked before anything
/// is read, and the compare with `expected` is what makes stale writers fail. When nothing
/// differs, nothing is written and the revision stays.
pub(crate) async fn write_in_tx(
    tx: &mut Transaction<'static, Any>,
    app: AppId,
    expected: Option<i64>,
    wanted: &Wanted,
    author: &UserId,
) -> Result<DraftWrite> {
    let now = Timestamp::now().as_micros();
    let current: i64 = sqlx::query(
        "UPDATE apps SET updated_at = updated_at WHERE id = $1 RETURNING draft_revision",
    )
    .bind(app.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("app"))?
    .try_get("draft_revision")?;
    if expected.is_some_and(|e| e != current) {
        return Err(StoreError::RevisionConflict { current });
    }
    let revision = current + 1;
    let mut result = DraftWrite {
        revision,
        added: Vec::new(),
        modified: Vec::new(),
        deleted: Vec::new(),
    };
    for (path, new) in wanted {
        let old =
            sqlx::query("SELECT blob_hash, size FROM draft_files WHERE app_id = $1 AND path = $2")
                .bind(app.to_string())
                .bind(path)
                .fetch_optional(&mut **tx)
                .await?;
        let old = match old {
            Some(row) => Some((
                parse_hash(row.try_get("blob_hash")?)?,
                row.try_get::<i64, _>("size")?,
            )),
            None => None,
        };
        let new = new.as_ref().map(|(h, size)| (h, *size));
        match (&old, new) {
            (None, None) => continue,
            (Some((old_hash, _)), Some((hash, _))) if old_hash == hash => continue,
            (_, Some((hash, size))) => {
                upsert_file(tx, app, path, hash, size).await?;
                match old {
                    Some(_) => result.modified.push(path.clone()),
                    None => result.added.push(path.clone()),
                }
            }
            (Some(_), None) => {
                sqlx::query("DELETE FROM draft_files WHERE app_id = $1 AND path = $2")
                    .bind(app.to_string())
                    .bind(path)
                    .execute(&mut **tx)
                    .await?;
                result.deleted.push(path.clone());
            }
        }
        let old_ref = old.as_ref().map(|(h, s)| (h, *s));
        record_change(tx, app, revision, path, old_ref, new).await?;
    }
    if result.added.is_empty() && result.modified.is_empty() && result.deleted.is_empty() {
        result.revision = current;
        return Ok(result);
    }
    sqlx::query("UPDATE apps SET draft_revision = $2, updated_at = $3 WHERE id = $1")
        .bind(app.to_string())
        .bind(revision)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    record_revision(tx, app, revision, author, now).await?;
    Ok(result)
}

async fn upsert_file(
    tx: &mut Transaction<'static, Any>,
    app: AppId,
    path: &str,
    hash: &BlobHash,
    size: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO draft_files (app_id, path, blob_hash, size) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (app_id, path) DO UPDATE SET blob_hash = excluded.blob_hash, size = excluded.size",
    )
    .bind(app.to_string())
    .bind(path)
    .bind(hash.as_str())
    .bind(size)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn record_change(
    tx: &mut Transaction<'static, Any>,
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
    tx: &mut Transaction<'static, Any>,
    app: AppId,
    revision: i64,
    author: &UserId,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO draft_revisions (app_id, revision, author, created_at) VALUES ($1, $2, $3, $4)")
        .bind(app.to_string())
        .bind(revision)
        .bind(&author.0)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn parse_hash(raw: String) -> Result<BlobHash> {
    BlobHash::parse(&raw).ok_or_else(|| StoreError::Corrupt(format!("blob hash {raw:?}")))
}

/// Makes the draft equal to `target` as one new revision (even when nothing differs), after
/// recording a `restore` checkpoint of what it replaces, refusing while a run is active.
/// The app row is locked first, so a run cannot start in between.
pub(crate) async fn restore_to(
    store: &SqlStore,
    app: AppId,
    target: &Manifest,
    author: &UserId,
    label: &str,
) -> Result<(DraftWrite, draftsmith_core::api::Checkpoint)> {
    let now = Timestamp::now().as_micros();
    let mut tx = crate::db::begin_write(&store.pool).await?;
    let claimed = sqlx::query(
        "UPDATE apps SET draft_revision = draft_revision + 1, updated_at = $2 WHERE id = $1 \
         RETURNING draft_revision",
    )
    .bind(app.to_string())
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound("app"))?;
    let revision: i64 = claimed.try_get("draft_revision")?;
    let active =
        sqlx::query("SELECT id FROM runs WHERE app_id = $1 AND status IN ('queued', 'running')")
            .bind(app.to_string())
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(row) = active {
        let id: String = row.try_get("id")?;
        return Err(StoreError::RunActive {
            run_id: id.parse().ok(),
        });
    }
    let checkpoint = crate::checkpoints::insert(
        &mut tx,
        &crate::checkpoints::NewCheckpoint {
            app,
            kind: draftsmith_core::api::CheckpointKind::Restore,
            revision: revision - 1,
            run: None,
            label: label.to_owned(),
            by: author.clone(),
            detached: None,
        },
    )
    .await?;
    let rows = sqlx::query("SELECT path, blob_hash, size FROM draft_files WHERE app_id = $1")
        .bind(app.to_string())
        .fetch_all(&mut *tx)
        .await?;
    let mut current: BTreeMap<String, (BlobHash, i64)> = BTreeMap::new();
    for row in &rows {
        current.insert(
            row.try_get("path")?,
            (parse_hash(row.try_get("blob_hash")?)?, row.try_get("size")?),
        );
    }
    let mut result = DraftWrite {
        revision,
        added: Vec::new(),
        modified: Vec::new(),
        deleted: Vec::new(),
    };
    for file in &target.files {
        let old = current.remove(&file.path);
        if old.as_ref().is_some_and(|(h, _)| h == &file.sha256) {
            continue;
        }
        upsert_file(&mut tx, app, &file.path, &file.sha256, file.size).await?;
        let old_ref = old.as_ref().map(|(h, s)| (h, *s));
        record_change(
            &mut tx,
            app,
            revision,
            &file.path,
            old_ref,
            Some((&file.sha256, file.size)),
        )
        .await?;
        match old {
            Some(_) => result.modified.push(file.path.clone()),
            None => result.added.push(file.path.clone()),
        }
    }
    for (path, (hash, size)) in current {
        sqlx::query("DELETE FROM draft_files WHERE app_id = $1 AND path = $2")
            .bind(app.to_string())
            .bind(&path)
            .execute(&mut *tx)
            .await?;
        record_change(&mut tx, app, revision, &path, Some((&hash, size)), None).await?;
        result.deleted.push(path);
    }
    record_revision(&mut tx, app, revision, author, now).await?;
    tx.commit().await?;
    Ok((result, checkpoint))
}
