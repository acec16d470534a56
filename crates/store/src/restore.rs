//! Restoring the draft to a checkpoint in as few statements as its transaction allows: one
//! locks the app row (claiming the revision and the `draft.revised` seq), one reads what
//! may differ and whether a run is active (after the lock, so it sees every commit before
//! it), and one writes. On PostgreSQL the writes (files, change log, revision, app event,
//! the `restore` checkpoint) are one statement of data-modifying CTEs over the moves sent
//! as a JSON array; SQLite, in process, runs a statement per table.

use std::collections::BTreeMap;

use draftsmith_core::UserId;
use draftsmith_core::api::{Checkpoint, CheckpointKind};
use serde::Serialize;
use sqlx::Row;

use crate::checkpoint_log::{self, NewCheckpoint};
use crate::db::Backend;
use crate::draft_writes::{self, Move};
use crate::drafts::DraftWrite;
use crate::error::{Result, StoreError};
use crate::rules;
use crate::sql::{self, Tx};

/// A path's content (blob and size), `None` where it does not exist.
type Content = Option<(draftsmith_core::BlobHash, i64)>;

/// Makes the draft equal to `target`'s manifest as a new revision after a `restore`
/// checkpoint of what it replaces (see [`crate::CheckpointStore::restore_to`]).
pub(crate) async fn restore(
    tx: &mut Tx,
    backend: Backend,
    target: &Checkpoint,
    author: &UserId,
    label: &str,
) -> Result<(DraftWrite, Checkpoint)> {
    let app = target.app_id;
    let (revision, seq) = draft_writes::claim_revision(tx, app).await?;
    let differences = differences_to(tx, backend, target).await?;
    let replaced = NewCheckpoint {
        app,
        kind: CheckpointKind::Restore,
        revision: revision - 1,
        run: None,
        label: label.to_owned(),
        by: author.clone(),
        detached: None,
    };
    let moves = differences
        .iter()
        .map(|(path, (now, then))| Move {
            path: path.as_str(),
            old: now.clone(),
            new: then.clone(),
        })
        .collect();
    if backend == Backend::Sqlite {
        let checkpoint = checkpoint_log::insert(tx, &replaced).await?;
        let write = draft_writes::write_moves(tx, app, (revision, seq), moves, author).await?;
        return Ok((write, checkpoint));
    }
    let mut write = DraftWrite::empty(revision);
    let moves = draft_writes::changing(&mut write, moves);
    let checkpoint = checkpoint_log::prepare(&replaced);
    write_in_one_statement(tx, &checkpoint, seq, &moves, author).await?;
    Ok((write, checkpoint))
}

/// Each path on which the current draft may differ from `target`'s manifest, with its
/// content now and in the manifest, read in one statement that also finds an active run
/// ([`StoreError::RunActive`]): the paths the change log touched after the checkpoint's
/// revision (their content then is the first change's old side, now the last change's new
/// side, which is what the draft holds), and the checkpoint's detached paths with what the
/// draft holds at them. Equal pairs are left to the writer to skip.
async fn differences_to(
    tx: &mut Tx,
    backend: Backend,
    target: &Checkpoint,
) -> Result<BTreeMap<String, (Content, Content)>> {
    // SQLite, whose rows cost the most to read, gets one row per touched path: its first
    // change since (SQLite takes a `MIN()` aggregate's bare columns from the row holding
    // the minimum) with what the draft holds now. PostgreSQL's plain range scan costs less
    // than the sort or join that would reduce it.
    let log = match backend {
        Backend::Sqlite => {
            "SELECT 'log' AS part, c.path, c.old_hash, c.old_size, \
               d.blob_hash AS new_hash, d.size AS new_size, c.first AS revision \
             FROM (SELECT path, old_hash, old_size, MIN(revision) AS first FROM draft_changes \
               WHERE app_id = $1 AND revision > $2 GROUP BY path) c \
             LEFT JOIN draft_files d ON d.app_id = $1 AND d.path = c.path"
        }
        Backend::Postgres => {
            "SELECT 'log' AS part, path, old_hash, old_size, new_hash, new_size, revision \
             FROM draft_changes WHERE app_id = $1 AND revision > $2"
        }
    };
    let rows = sqlx::query(&format!(
        "{log} \
         UNION ALL SELECT 'detached', path, blob_hash, size, NULL, NULL, 0 \
         FROM checkpoint_changes WHERE checkpoint_id = $3 \
         UNION ALL SELECT 'draft', f.path, f.blob_hash, f.size, NULL, NULL, 0 \
         FROM checkpoint_changes d JOIN draft_files f ON f.app_id = $1 AND f.path = d.path \
         WHERE d.checkpoint_id = $3 \
         UNION ALL SELECT 'run', id, NULL, NULL, NULL, NULL, 0 \
         FROM runs WHERE app_id = $1 AND status IN ({})",
        rules::active_sql()
    ))
    .bind(target.app_id.to_string())
    .bind(target.revision)
    .bind(&target.id)
    .fetch_all(&mut **tx)
    .await?;
    let side = |row: &sqlx::any::AnyRow, hash: &str, size: &str| -> Result<Content> {
        let Some(sha256) = sql::hash_opt(row, hash)? else {
            return Ok(None);
        };
        Ok(Some((
            sha256,
            row.try_get::<Option<i64>, _>(size)?.unwrap_or_default(),
        )))
    };
    // Unordered (a sort of the whole log since the checkpoint costs more than it saves):
    // each path's first change since gives its content then, its last its content now.
    let mut touched: BTreeMap<String, Span> = BTreeMap::new();
    let mut detached = Vec::new();
    let mut drafted = BTreeMap::new();
    for row in &rows {
        let path: String = row.try_get("path")?;
        match row.try_get::<String, _>("part")?.as_str() {
            "run" => {
                return Err(StoreError::RunActive {
                    run_id: path.parse().ok(),
                });
            }
            "detached" => detached.push((path, side(row, "old_hash", "old_size")?)),
            "draft" => {
                drafted.insert(path, side(row, "old_hash", "old_size")?);
            }
            _ => {
                let revision: i64 = row.try_get("revision")?;
                let old = side(row, "old_hash", "old_size")?;
                let new = side(row, "new_hash", "new_size")?;
                match touched.get_mut(&path) {
                    Some(span) => span.widen(revision, old, new),
                    None => {
                        touched.insert(path, Span::of(revision, old, new));
                    }
                }
            }
        }
    }
    // path → (now, then)
    let mut differences: BTreeMap<String, (Content, Content)> = touched
        .into_iter()
        .map(|(path, span)| (path, (span.now, span.then)))
        .collect();
    for (path, then) in detached {
        match differences.get_mut(&path) {
            Some(entry) => entry.1 = then,
            // A detached path the log did not touch since is now what the draft holds.
            None => {
                let now = drafted.remove(&path).flatten();
                differences.insert(path, (now, then));
            }
        }
    }
    Ok(differences)
}

/// A path's changes in the log since the checkpoint: its content before the first one
/// and after the last one.
struct Span {
    first: i64,
    then: Content,
    last: i64,
    now: Content,
}

impl Span {
    fn of(revision: i64, old: Content, new: Content) -> Self {
        Self {
            first: revision,
            then: old,
            last: revision,
            now: new,
        }
    }

    fn widen(&mut self, revision: i64, old: Content, new: Content) {
        if revision < self.first {
            (self.first, self.then) = (revision, old);
        }
        if revision > self.last {
            (self.last, self.now) = (revision, new);
        }
    }
}

/// One `moves` element as the statement reads it.
#[derive(Serialize)]
struct MoveRow<'a> {
    path: &'a str,
    old_hash: Option<&'a str>,
    old_size: Option<i64>,
    new_hash: Option<&'a str>,
    new_size: Option<i64>,
}

/// Writes the restore on PostgreSQL in one statement: the draft's files, the change log,
/// the revision row, its `draft.revised` at the claimed `seq`, and the `restore`
/// checkpoint.
async fn write_in_one_statement(
    tx: &mut Tx,
    checkpoint: &Checkpoint,
    seq: i64,
    moves: &[Move<'_>],
    author: &UserId,
) -> Result<()> {
    let rows: Vec<MoveRow> = moves
        .iter()
        .map(|m| MoveRow {
            path: m.path,
            old_hash: m.old.as_ref().map(|(h, _)| h.as_str()),
            old_size: m.old.as_ref().map(|(_, s)| *s),
            new_hash: m.new.as_ref().map(|(h, _)| h.as_str()),
            new_size: m.new.as_ref().map(|(_, s)| *s),
        })
        .collect();
    let app = checkpoint.app_id;
    let revision = checkpoint.revision + 1;
    let revised = draft_writes::revised(app, seq, revision, author);
    sqlx::query(&format!(
        "WITH moves AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS m \
           (path TEXT, old_hash TEXT, old_size BIGINT, new_hash TEXT, new_size BIGINT)), \
         kept AS (INSERT INTO draft_files (app_id, path, blob_hash, size) \
           SELECT $2, path, new_hash, new_size FROM moves WHERE new_hash IS NOT NULL \
           ON CONFLICT (app_id, path) DO UPDATE SET blob_hash = excluded.blob_hash, \
           size = excluded.size), \
         gone AS (DELETE FROM draft_files WHERE app_id = $2 \
           AND path IN (SELECT path FROM moves WHERE new_hash IS NULL)), \
         logged AS (INSERT INTO draft_changes \
           (app_id, revision, path, old_hash, old_size, new_hash, new_size) \
           SELECT $2, $3, path, old_hash, old_size, new_hash, new_size FROM moves), \
         revised AS (INSERT INTO draft_revisions (app_id, revision, author, created_at) \
           VALUES ($2, $3, $4, $5)), \
         announced AS (INSERT INTO app_events (app_id, seq, event_type, body, created_at) \
           VALUES ($2, $6, $7, $8, $9)) \
         INSERT INTO checkpoints ({}) VALUES ($10, $2, $11, $12, 0, NULL, $13, $4, $14)",
        checkpoint_log::COLUMNS
    ))
    .bind(sql::to_json(&rows)?)
    .bind(app.to_string())
    .bind(revision)
    .bind(&author.0)
    .bind(draftsmith_core::Timestamp::now().as_micros())
    .bind(revised.seq)
    .bind(revised.body.event_type())
    .bind(sql::to_json(&revised)?)
    .bind(revised.ts.as_micros())
    .bind(&checkpoint.id)
    .bind(checkpoint.kind.as_str())
    .bind(checkpoint.revision)
    .bind(&checkpoint.label)
    .bind(checkpoint.created_at.as_micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
