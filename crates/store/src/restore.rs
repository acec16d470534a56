//! Restoring the draft to a checkpoint in as few round trips as each database allows.
//! PostgreSQL takes one: the stored function `restore_draft` (migration `0016_restore`)
//! locks the app row, looks for an active run, claims the revision and the
//! `draft.revised` seq, reads what differs and writes it (files, change log, revision,
//! app event, the `restore` checkpoint), called outside a transaction so it is its own.
//! SQLite, in process, runs the same steps in one transaction, whose `BEGIN IMMEDIATE`
//! holds the file's write lock throughout: one statement reads the app's counters, what
//! may differ and whether a run is active, then one script ([`Script`]) writes every
//! table.

use std::collections::BTreeMap;

use draftsmith_core::api::{Checkpoint, CheckpointKind};
use draftsmith_core::{BlobHash, UserId};
use serde::Deserialize;
use sqlx::Row;

use crate::checkpoint_log::{self, NewCheckpoint};
use crate::draft_writes::{self, Move};
use crate::drafts::DraftWrite;
use crate::error::{Result, StoreError};
use crate::rules;
use crate::sql::{self, Script, Tx};

/// A path's content (blob and size), `None` where it does not exist.
type Content = Option<(BlobHash, i64)>;

/// A content as the database answers it: a blob's hash (`None` where the path does not
/// exist) and its size.
fn content(hash: Option<&str>, size: Option<i64>) -> Result<Content> {
    let Some(hash) = hash else { return Ok(None) };
    Ok(Some((sql::blob_hash(hash)?, size.unwrap_or_default())))
}

/// The `restore` checkpoint of what a restore to `target` replaces, at `revision`.
fn replaced(target: &Checkpoint, revision: i64, author: &UserId, label: &str) -> NewCheckpoint {
    NewCheckpoint {
        app: target.app_id,
        kind: CheckpointKind::Restore,
        revision,
        run: None,
        label: label.to_owned(),
        by: author.clone(),
        detached: None,
    }
}

/// On SQLite, in `tx`: makes the draft equal to `target`'s manifest as a new revision after
/// a `restore` checkpoint of what it replaces (see [`crate::CheckpointStore::restore_to`]).
pub(crate) async fn restore_in(
    tx: &mut Tx,
    target: &Checkpoint,
    author: &UserId,
    label: &str,
) -> Result<(DraftWrite, Checkpoint)> {
    let app = target.app_id;
    let (differences, (revision, seq)) = differences_to(tx, target).await?;
    let mut script = Script::new(tx);
    let new = replaced(target, revision, author, label);
    let checkpoint = checkpoint_log::prepare(&new);
    checkpoint_log::push_insert(&mut script, &new, &checkpoint);
    let moves = differences
        .iter()
        .map(|(path, (now, then))| Move {
            path: path.as_str(),
            old: now.clone(),
            new: then.clone(),
        })
        .collect();
    let write = draft_writes::push_write(&mut script, app, (revision + 1, seq + 1), moves, author)?;
    script.run(tx).await?;
    Ok((write, checkpoint))
}

/// What `restore_draft` answers.
#[derive(Deserialize)]
#[serde(untagged)]
enum Restored {
    Active { active: String },
    Done { revision: i64, moves: Vec<MoveRow> },
}

/// One path the restore changed, as `restore_draft` answers it.
#[derive(Deserialize)]
struct MoveRow {
    path: String,
    old_hash: Option<String>,
    old_size: Option<i64>,
    new_hash: Option<String>,
    new_size: Option<i64>,
}

/// On PostgreSQL, in one call of `restore_draft` on `pool` (its own transaction): as
/// [`restore_in`].
pub(crate) async fn restore_on(
    conn: &mut sqlx::AnyConnection,
    target: &Checkpoint,
    author: &UserId,
    label: &str,
) -> Result<(DraftWrite, Checkpoint)> {
    let app = target.app_id;
    // The revision and seq are claimed by the function, which fills them in.
    let mut checkpoint = checkpoint_log::prepare(&replaced(target, 0, author, label));
    let mut event = draft_writes::revised(app, 0, 0, author);
    event.ts = checkpoint.created_at;
    let answer: Option<String> =
        sqlx::query("SELECT restore_draft($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) AS answer")
            .bind(app.to_string())
            .bind(target.revision)
            .bind(&target.id)
            .bind(rules::active_json())
            .bind(&author.0)
            .bind(checkpoint.created_at.as_micros())
            .bind(sql::to_json(&event)?)
            .bind(&checkpoint.id)
            .bind(checkpoint.kind.as_str())
            .bind(&checkpoint.label)
            .fetch_one(conn)
            .await?
            .try_get("answer")?;
    let answer = answer.ok_or(StoreError::NotFound("app"))?;
    let (revision, rows) = match serde_json::from_str(&answer)
        .map_err(|e| StoreError::Corrupt(format!("restore_draft answered {answer:?}: {e}")))?
    {
        Restored::Active { active } => {
            return Err(StoreError::RunActive {
                run_id: active.parse().ok(),
            });
        }
        Restored::Done { revision, moves } => (revision, moves),
    };
    checkpoint.revision = revision - 1;
    let mut moves = rows
        .iter()
        .map(|row| {
            Ok(Move {
                path: row.path.as_str(),
                old: content(row.old_hash.as_deref(), row.old_size)?,
                new: content(row.new_hash.as_deref(), row.new_size)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    moves.sort_by(|a, b| a.path.cmp(b.path));
    let mut write = DraftWrite::empty(revision);
    draft_writes::changing(&mut write, moves);
    Ok((write, checkpoint))
}

/// Each path on which the current draft may differ from `target`'s manifest, with its
/// content now and in the manifest, and the app's draft revision and last app event `seq`,
/// read in one statement that also finds an active run ([`StoreError::RunActive`]) and a
/// missing app: the paths the change log touched after the checkpoint's
/// revision, one row each (its first change since, whose old side is its content then:
/// SQLite takes a `MIN()` aggregate's bare columns from the row holding the minimum) with
/// what the draft holds now, and the checkpoint's detached paths with what the draft holds
/// at them. Equal pairs are left to the writer to skip. The rows come back as one JSON
/// array ([`sql::json_rows`]).
async fn differences_to(
    tx: &mut Tx,
    target: &Checkpoint,
) -> Result<(BTreeMap<String, (Content, Content)>, (i64, i64))> {
    let log = "SELECT 'log' AS part, c.path, c.old_hash, c.old_size, \
         d.blob_hash AS new_hash, d.size AS new_size \
         FROM (SELECT path, old_hash, old_size, MIN(revision) FROM draft_changes \
           WHERE app_id = $1 AND revision > $2 GROUP BY path) c \
         LEFT JOIN draft_files d ON d.app_id = $1 AND d.path = c.path";
    let rows = sql::json_rows(true, "part, path, old_hash, old_size, new_hash, new_size");
    let rows: String = sqlx::query(&format!(
        "SELECT {rows} AS rows FROM ({log} \
         UNION ALL SELECT 'detached', path, blob_hash, size, NULL, NULL \
         FROM checkpoint_changes WHERE checkpoint_id = $3 \
         UNION ALL SELECT 'draft', f.path, f.blob_hash, f.size, NULL, NULL \
         FROM checkpoint_changes d JOIN draft_files f ON f.app_id = $1 AND f.path = d.path \
         WHERE d.checkpoint_id = $3 \
         UNION ALL SELECT 'run', id, NULL, NULL, NULL, NULL \
         FROM runs WHERE app_id = $1 AND status IN ({}) \
         UNION ALL SELECT 'app', '', NULL, draft_revision, NULL, next_event_seq \
         FROM apps WHERE id = $1)",
        rules::active_sql()
    ))
    .bind(target.app_id.to_string())
    .bind(target.revision)
    .bind(&target.id)
    .fetch_one(&mut **tx)
    .await?
    .try_get("rows")?;
    let rows: Vec<DifferenceRow> = sql::from_json_rows(&rows)?;
    // path → (now, then)
    let mut differences: BTreeMap<String, (Content, Content)> = BTreeMap::new();
    let mut detached = Vec::new();
    let mut drafted = BTreeMap::new();
    let mut counters = None;
    for (part, path, old_hash, old_size, new_hash, new_size) in rows {
        match part.as_str() {
            "app" => counters = old_size.zip(new_size),
            "run" => {
                return Err(StoreError::RunActive {
                    run_id: path.parse().ok(),
                });
            }
            "detached" => detached.push((path, content(old_hash.as_deref(), old_size)?)),
            "draft" => {
                drafted.insert(path, content(old_hash.as_deref(), old_size)?);
            }
            _ => {
                let then = content(old_hash.as_deref(), old_size)?;
                let now = content(new_hash.as_deref(), new_size)?;
                differences.insert(path, (now, then));
            }
        }
    }
    let counters = counters.ok_or(StoreError::NotFound("app"))?;
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
    Ok((differences, counters))
}

/// One row of [`differences_to`]'s read: its part, a path (a run's id for `run`), and two
/// contents (blob and size), each side absent where its hash is `null` (for `app`, its
/// draft revision and last app event `seq` in the sizes).
type DifferenceRow = (
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use draftsmith_core::DraftPath;
    use draftsmith_testkit::{StoreKind, TestDb};
    use sqlx::{Connection, Executor};

    use super::*;
    use crate::prelude::*;
    use crate::{FileChange, NewApp, SqlStore};

    /// What differs: `DIFFERENT` of a `DRAFT`-file draft.
    const DRAFT: usize = 2_000;
    const DIFFERENT: usize = 5;

    fn file(i: usize, version: &str) -> (DraftPath, Vec<u8>) {
        let path = DraftPath::parse(&format!("src/f{i:04}.js")).unwrap();
        (path, format!("// {i} {version}").into_bytes())
    }

    /// On PostgreSQL, `restore_draft` probes the draft at the paths that differ, in its
    /// generic plan too: it reads a handful of `draft_files` rows of a 2,000-file draft,
    /// where a join that hashed the app's draft read all of them. Counted by the
    /// statistics of the transaction the restore is called in, rolled back after.
    #[tokio::test]
    async fn a_restore_reads_the_draft_only_where_it_differs() {
        let db = TestDb::new(StoreKind::Postgres).await;
        let store = SqlStore::connect(&db.url).await.unwrap();
        let by = UserId("tester".into());
        let new = NewApp {
            name: "big".into(),
            slug: "big".into(),
            template: "static".into(),
            owner: by.clone(),
            files: (0..DRAFT).map(|i| file(i, "v1")).collect(),
        };
        let app = store.create_app(new).await.unwrap().id;
        let target = store
            .create_checkpoint(NewCheckpoint::manual(app, 1, "first", by.clone()))
            .await
            .unwrap();
        let changes = (0..DIFFERENT)
            .map(|i| {
                let (path, content) = file(i * 300, "v2");
                FileChange {
                    path,
                    content: Some(content),
                }
            })
            .collect();
        store.write_draft(app, Some(1), changes, &by).await.unwrap();
        let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        conn.execute("BEGIN").await.unwrap();
        let (write, _) = restore_on(&mut conn, &target, &by, "back").await.unwrap();
        assert_eq!(write.changes.modified.len(), DIFFERENT);
        let read: i64 = sqlx::query(
            "SELECT (COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0))::BIGINT AS n \
             FROM pg_stat_xact_user_tables WHERE relname = 'draft_files'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        conn.execute("ROLLBACK").await.unwrap();
        assert!(
            read <= 4 * DIFFERENT as i64,
            "the restore read {read} rows of a {DRAFT}-file draft to change {DIFFERENT}"
        );
        store.close().await;
    }
}
