//! Writing drafts inside a transaction: the app row is locked first, every changed path is
//! recorded with its old and new value, and a revision row names the author. The callers
//! (draft writes, app creation, restores, landings) compose these in their own transaction.

use std::collections::BTreeMap;

use draftsmith_core::{AppEvent, AppEventBody, AppId, BlobHash, Timestamp, UserId};
use sqlx::Row;

use crate::app_log;
use crate::blobs::BlobStore;
use crate::drafts::{DraftWrite, FileChange, file_from_row};
use crate::error::{Result, StoreError};
use crate::sql::{CHUNK, Marks, Script, Tx};

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
    Ok(lock_counters(tx, app).await?.0)
}

/// As [`lock_app`], answering the draft revision and the app event `seq` last claimed,
/// which stay as read until this transaction moves them: the row is locked (on SQLite the
/// whole file is, from `BEGIN IMMEDIATE`).
async fn lock_counters(tx: &mut Tx, app: AppId) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "UPDATE apps SET updated_at = updated_at WHERE id = $1 \
         RETURNING draft_revision, next_event_seq",
    )
    .bind(app.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound("app"))?;
    Ok((
        row.try_get("draft_revision")?,
        row.try_get("next_event_seq")?,
    ))
}

/// Adds to `script` the move of the app's draft to `revision` with its `draft.revised` at
/// app event `seq` (both claimed by the caller, who holds the app row's lock), recording
/// who made it.
pub(crate) fn push_revision(
    script: &mut Script,
    app: AppId,
    (revision, seq): (i64, i64),
    author: &UserId,
) -> Result<()> {
    let now = Timestamp::now().as_micros();
    let marks = script.marks();
    script.push(
        format!(
            "UPDATE apps SET draft_revision = {}, next_event_seq = {}, updated_at = {} \
             WHERE id = {}",
            marks.mark(1),
            marks.mark(2),
            marks.mark(3),
            marks.mark(4)
        ),
        vec![
            revision.into(),
            seq.into(),
            now.into(),
            app.to_string().into(),
        ],
    );
    push_revision_row(script, app, revision, author, now);
    app_log::push_insert(script, &revised(app, seq, revision, author))
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
    let (current, seq) = lock_counters(tx, app).await?;
    if expected.is_some_and(|e| e != current) {
        return Err(StoreError::RevisionConflict { current });
    }
    let mut result = DraftWrite::empty(current + 1);
    let paths: Vec<&str> = wanted.keys().map(String::as_str).collect();
    let current_files = files_at(tx, app, &paths).await?;
    let moves = wanted
        .iter()
        .map(|(path, new)| Move {
            path: path.as_str(),
            old: current_files.get(path.as_str()).cloned(),
            new: new.clone(),
        })
        .collect();
    let mut script = Script::new(tx);
    push_moves(&mut script, app, &mut result, moves);
    if result.is_empty() {
        result.revision = current;
        return Ok(result);
    }
    push_revision(&mut script, app, (result.revision, seq + 1), author)?;
    script.run(tx).await?;
    Ok(result)
}

/// Adds to `script` the application of `moves` as `revision`, its `draft.revised` at app
/// event `seq` (both claimed by the caller, who holds the app row's lock), recording who
/// made it; answers what it changes.
pub(crate) fn push_write(
    script: &mut Script,
    app: AppId,
    (revision, seq): (i64, i64),
    moves: Vec<Move<'_>>,
    author: &UserId,
) -> Result<DraftWrite> {
    let mut result = DraftWrite::empty(revision);
    push_moves(script, app, &mut result, moves);
    push_revision(script, app, (revision, seq), author)?;
    Ok(result)
}

/// The `draft.revised` of `revision`, at the claimed app event `seq`.
pub(crate) fn revised(app: AppId, seq: i64, revision: i64, author: &UserId) -> AppEvent {
    let body = AppEventBody::DraftRevised {
        revision,
        author: author.clone(),
    };
    app_log::claimed(app, seq, body)
}

/// The files of a new app's revision 1 (its row already inserted at revision 1).
pub(crate) async fn first_revision(
    tx: &mut Tx,
    app: AppId,
    files: &[(String, BlobHash, i64)],
    author: &UserId,
    now: i64,
) -> Result<()> {
    let mut result = DraftWrite::empty(1);
    let moves = files
        .iter()
        .map(|(path, hash, size)| Move {
            path: path.as_str(),
            old: None,
            new: Some((hash.clone(), *size)),
        })
        .collect();
    let mut script = Script::new(tx);
    push_revision_row(&mut script, app, 1, author, now);
    push_moves(&mut script, app, &mut result, moves);
    script.run(tx).await?;
    let revised = AppEventBody::DraftRevised {
        revision: 1,
        author: author.clone(),
    };
    app_log::append_in_tx(tx, app, revised).await?;
    Ok(())
}

/// A path's content before and after (blob and size), `None` where it does not exist.
pub(crate) struct Move<'a> {
    pub path: &'a str,
    pub old: Option<(BlobHash, i64)>,
    pub new: Option<(BlobHash, i64)>,
}

/// The current blob and size of each of `paths` that exists, read in a few statements.
pub(crate) async fn files_at(
    tx: &mut Tx,
    app: AppId,
    paths: &[&str],
) -> Result<BTreeMap<String, (BlobHash, i64)>> {
    let mut found = BTreeMap::new();
    let marks = Marks::of(tx);
    for chunk in paths.chunks(CHUNK) {
        let sql = match marks {
            // One key lookup per path, whatever the statistics say (see `by_key`).
            Marks::Numbered => format!(
                "SELECT f.path, f.blob_hash, f.size FROM {}",
                by_key(chunk.len(), "path, blob_hash, size")
            ),
            Marks::Anonymous => format!(
                "SELECT path, blob_hash, size FROM draft_files WHERE app_id = ? AND path IN ({})",
                marks.list(2, chunk.len())
            ),
        };
        let mut query = sqlx::query(&sql).bind(app.to_string());
        for path in chunk {
            query = query.bind(*path);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let file = file_from_row(&row)?;
            found.insert(file.path, (file.sha256, file.size));
        }
    }
    Ok(found)
}

/// On PostgreSQL, `columns` of the draft rows of app `$1` at the `count` paths `$2…`, as
/// `f`: the paths as a list of rows, each looked up by the primary key on its own
/// (`LIMIT 1` keeps the planner from folding the lookups into one join). `app_id = $1 AND
/// path IN (…)` let a cached generic plan, which guesses an app's row count from the
/// whole table, read every file of the app by `app_id` and filter the paths: 7 ms for
/// 50 paths of a 5,000-file draft, against 0.26 ms by key.
fn by_key(count: usize, columns: &str) -> String {
    let paths: Vec<String> = (2..2 + count).map(|n| format!("(${n})")).collect();
    format!(
        "(VALUES {}) AS wanted (path) CROSS JOIN LATERAL (SELECT {columns} FROM draft_files \
         WHERE app_id = $1 AND path = wanted.path LIMIT 1) f",
        paths.join(", ")
    )
}

/// The moves that change something (their two sides differ), each noted in `result` as
/// an addition, a modification or a deletion.
pub(crate) fn changing<'a>(result: &mut DraftWrite, moves: Vec<Move<'a>>) -> Vec<Move<'a>> {
    let moves: Vec<Move> = moves
        .into_iter()
        .filter(|m| match (&m.old, &m.new) {
            (None, None) => false,
            (Some((a, _)), Some((b, _))) => a != b,
            _ => true,
        })
        .collect();
    for m in &moves {
        let list = match (&m.old, &m.new) {
            (Some(_), Some(_)) => &mut result.changes.modified,
            (None, _) => &mut result.changes.added,
            (Some(_), None) => &mut result.changes.deleted,
        };
        list.push(m.path.to_owned());
    }
    moves
}

/// Adds to `script` the move of each path from its `old` to its `new` at
/// `result.revision`, noting it in `result` (paths whose two sides are equal are left
/// alone), in a few multi-row statements rather than two per path: a write costs what
/// differs, not a round trip per file. Nothing is added when nothing changes.
pub(crate) fn push_moves(
    script: &mut Script,
    app: AppId,
    result: &mut DraftWrite,
    moves: Vec<Move<'_>>,
) {
    let moves = changing(result, moves);
    let kept: Vec<(&str, &BlobHash, i64)> = moves
        .iter()
        .filter_map(|m| m.new.as_ref().map(|(hash, size)| (m.path, hash, *size)))
        .collect();
    let gone: Vec<&str> = moves
        .iter()
        .filter(|m| m.new.is_none())
        .map(|m| m.path)
        .collect();
    let marks = script.marks();
    let app = app.to_string();
    for chunk in kept.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO draft_files (app_id, path, blob_hash, size) VALUES {} \
             ON CONFLICT (app_id, path) DO UPDATE SET blob_hash = excluded.blob_hash, \
             size = excluded.size",
            marks.rows(chunk.len(), 4)
        );
        let mut values = Vec::with_capacity(chunk.len() * 4);
        for (path, hash, size) in chunk {
            values.extend([
                app.as_str().into(),
                (*path).into(),
                hash.as_str().into(),
                (*size).into(),
            ]);
        }
        script.push(sql, values);
    }
    for chunk in gone.chunks(CHUNK) {
        let sql = match marks {
            // The rows found by key, deleted by their row address in the same statement.
            Marks::Numbered => format!(
                "DELETE FROM draft_files WHERE ctid = ANY (ARRAY(SELECT f.ctid FROM {}))",
                by_key(chunk.len(), "ctid")
            ),
            Marks::Anonymous => format!(
                "DELETE FROM draft_files WHERE app_id = ? AND path IN ({})",
                marks.list(2, chunk.len())
            ),
        };
        let mut values = vec![app.as_str().into()];
        values.extend(chunk.iter().map(|path| (*path).into()));
        script.push(sql, values);
    }
    for chunk in moves.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO draft_changes \
             (app_id, revision, path, old_hash, old_size, new_hash, new_size) VALUES {}",
            marks.rows(chunk.len(), 7)
        );
        let mut values = Vec::with_capacity(chunk.len() * 7);
        for m in chunk {
            values.extend([
                app.as_str().into(),
                result.revision.into(),
                m.path.into(),
                m.old.as_ref().map(|(h, _)| h.as_str().to_owned()).into(),
                m.old.as_ref().map(|(_, s)| *s).into(),
                m.new.as_ref().map(|(h, _)| h.as_str().to_owned()).into(),
                m.new.as_ref().map(|(_, s)| *s).into(),
            ]);
        }
        script.push(sql, values);
    }
}

/// Adds to `script` the row naming who made `revision`.
fn push_revision_row(script: &mut Script, app: AppId, revision: i64, author: &UserId, now: i64) {
    let marks = script.marks().list(1, 4);
    script.push(
        format!(
            "INSERT INTO draft_revisions (app_id, revision, author, created_at) VALUES ({marks})"
        ),
        vec![
            app.to_string().into(),
            revision.into(),
            author.0.as_str().into(),
            now.into(),
        ],
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use draftsmith_core::DraftPath;
    use draftsmith_testkit::{StoreKind, TestDb};
    use sqlx::{Connection, Executor};

    use super::*;
    use crate::{AppStore, NewApp, SqlStore};

    /// Rows of `draft_files` that a plan in `EXPLAIN ANALYZE`'s text read, kept or filtered
    /// out, over all their loops.
    fn rows_read(plan: &[String]) -> u64 {
        let number = |line: &str, key: &str| -> u64 {
            line.split(key).nth(1).map_or(0, |rest| {
                rest.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap()
            })
        };
        let mut read = 0;
        let mut loops = 0;
        for line in plan {
            if line.contains("->") || line.contains("(cost=") {
                // A node: its kept rows (the actual ones, after the estimate) count if it
                // reads the table.
                loops = 0;
                if line.contains(" on draft_files") {
                    let actual = line.split("(actual").nth(1).unwrap();
                    loops = number(actual, " loops=");
                    read += number(actual, " rows=") * loops;
                }
            } else if line.trim_start().starts_with("Rows Removed by Filter:") {
                read += number(line, "Filter: ") * loops;
            }
        }
        read
    }

    /// A cached generic plan of the PostgreSQL lookups reads the wanted paths' rows alone,
    /// on a draft of 2,000 files whose table has no statistics yet (the planner's guess of
    /// one app's rows is then far off, as it is for a large app among many small ones).
    #[tokio::test]
    async fn draft_rows_are_read_by_key_whatever_the_plan() {
        let db = TestDb::new(StoreKind::Postgres).await;
        let store = SqlStore::connect(&db.url).await.unwrap();
        let files = (0..2_000)
            .map(|i| {
                (
                    DraftPath::parse(&format!("src/f{i:05}.js")).unwrap(),
                    vec![b'x'; 10],
                )
            })
            .collect();
        let app = store
            .create_app(NewApp {
                name: "big".into(),
                slug: "big".into(),
                template: "static".into(),
                owner: UserId("u".into()),
                files,
            })
            .await
            .unwrap();
        let paths: Vec<String> = (0..50)
            .map(|k| format!("'src/f{:05}.js'", k * 37))
            .collect();
        let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        for (name, column) in [("lookup", "f.path"), ("address", "f.ctid")] {
            let prepare = format!(
                "PREPARE {name} AS SELECT {column} FROM {}",
                by_key(50, "path, ctid")
            );
            conn.execute(prepare.as_str()).await.unwrap();
        }
        conn.execute("SET plan_cache_mode = force_generic_plan")
            .await
            .unwrap();
        for name in ["lookup", "address"] {
            let explain = format!(
                "EXPLAIN ANALYZE EXECUTE {name}('{}', {})",
                app.id,
                paths.join(", ")
            );
            let plan: Vec<String> = sqlx::query_scalar(explain.as_str())
                .fetch_all(&mut conn)
                .await
                .unwrap();
            assert_eq!(rows_read(&plan), 50, "{name}: {plan:#?}");
        }
    }
}
