//! Checkpoint rows: what a new one points at, its columns and decoding, and the insert that
//! runs, restores and landings make inside their own transactions.

use draftsmith_core::api::{Checkpoint, CheckpointKind};
use draftsmith_core::{AppId, BlobHash, RunId, Timestamp, UserId};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::error::{Result, StoreError};
use crate::sql::{self, Script, Tx};

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

impl NewCheckpoint {
    /// A `manual` checkpoint of `app`'s draft at `revision`, taken by `by`.
    pub fn manual(app: AppId, revision: i64, label: impl Into<String>, by: UserId) -> Self {
        Self {
            app,
            kind: CheckpointKind::Manual,
            revision,
            run: None,
            label: label.into(),
            by,
            detached: None,
        }
    }
}

/// The `checkpoints` columns, in the order of the insert's parameters.
pub(crate) const COLUMNS: &str =
    "id, app_id, kind, revision, detached, run_id, label, created_by, created_at";

fn from_row(row: &AnyRow) -> Result<Checkpoint> {
    Ok(Checkpoint {
        id: row.try_get("id")?,
        app_id: sql::id(row, "app_id")?,
        kind: sql::decode(row, "kind", CheckpointKind::parse)?,
        revision: row.try_get("revision")?,
        run_id: sql::id_opt(row, "run_id")?,
        label: row.try_get("label")?,
        created_by: UserId(row.try_get("created_by")?),
        created_at: sql::time(row, "created_at")?,
        changes: None,
    })
}

/// The checkpoint `new` will be once inserted: a fresh id, taken now.
pub(crate) fn prepare(new: &NewCheckpoint) -> Checkpoint {
    Checkpoint {
        id: uuid::Uuid::new_v4().to_string(),
        app_id: new.app,
        kind: new.kind,
        revision: new.revision,
        run_id: new.run,
        label: new.label.clone(),
        created_by: new.by.clone(),
        created_at: Timestamp::now(),
        changes: None,
    }
}

/// Records `new` (its detached paths too) and answers it.
pub(crate) async fn insert(tx: &mut Tx, new: &NewCheckpoint) -> Result<Checkpoint> {
    let checkpoint = prepare(new);
    insert_prepared(tx, new, &checkpoint).await?;
    Ok(checkpoint)
}

/// The statement inserting a checkpoint's row, its parameters marked by `marks` from
/// number `first` on, in [`COLUMNS`] order ([`row_values`]).
pub(crate) fn insert_row_sql(marks: sql::Marks, first: usize) -> String {
    let marks = marks.list(first, 9);
    format!("INSERT INTO checkpoints ({COLUMNS}) VALUES ({marks})")
}

/// [`insert_row_sql`]'s values: the row of `checkpoint`, prepared from `new`.
fn row_values(new: &NewCheckpoint, checkpoint: &Checkpoint) -> Vec<sql::Value> {
    vec![
        checkpoint.id.as_str().into(),
        new.app.to_string().into(),
        new.kind.as_str().into(),
        new.revision.into(),
        i64::from(new.detached.is_some()).into(),
        new.run.map(|r| r.to_string()).into(),
        new.label.as_str().into(),
        new.by.0.as_str().into(),
        checkpoint.created_at.as_micros().into(),
    ]
}

/// Binds [`insert_row_sql`]'s parameters: the row of `checkpoint`, prepared from `new`.
pub(crate) fn bind_row<'q>(
    query: sql::Query<'q>,
    new: &NewCheckpoint,
    checkpoint: &Checkpoint,
) -> sql::Query<'q> {
    row_values(new, checkpoint)
        .into_iter()
        .fold(query, sql::bind)
}

/// Records `new` as `checkpoint` (from [`prepare`]), its detached paths too.
pub(crate) async fn insert_prepared(
    tx: &mut Tx,
    new: &NewCheckpoint,
    checkpoint: &Checkpoint,
) -> Result<()> {
    let mut script = Script::new(tx);
    push_insert(&mut script, new, checkpoint);
    script.run(tx).await
}

/// Adds to `script` the records of `new` as `checkpoint` (from [`prepare`]), its detached
/// paths too.
pub(crate) fn push_insert(script: &mut Script, new: &NewCheckpoint, checkpoint: &Checkpoint) {
    let marks = script.marks();
    script.push(insert_row_sql(marks, 1), row_values(new, checkpoint));
    for (path, value) in new.detached.iter().flatten() {
        script.push(
            format!(
                "INSERT INTO checkpoint_changes (checkpoint_id, path, blob_hash, size) \
                 VALUES ({})",
                marks.list(1, 4)
            ),
            vec![
                checkpoint.id.as_str().into(),
                path.as_str().into(),
                value.as_ref().map(|(h, _)| h.as_str().to_owned()).into(),
                value.as_ref().map(|(_, s)| *s).into(),
            ],
        );
    }
}

/// A checkpoint a run took, of `kind`, at `revision`, attributed to `by`.
pub(crate) fn of_run(
    app: AppId,
    run: RunId,
    kind: CheckpointKind,
    revision: i64,
    by: &UserId,
) -> NewCheckpoint {
    let label = match kind {
        CheckpointKind::PreRun => "before the run",
        _ => "after the run",
    };
    NewCheckpoint {
        app,
        kind,
        revision,
        run: Some(run),
        label: label.into(),
        by: by.clone(),
        detached: None,
    }
}

/// One checkpoint.
pub(crate) async fn get(pool: &AnyPool, id: &str) -> Result<Checkpoint> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM checkpoints WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::NotFound("checkpoint"))?;
    from_row(&row)
}

/// An app's checkpoints, newest first, before the `(created_at, id)` cursor.
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

/// The checkpoint `run` took of `kind`, if any.
pub(crate) async fn of_kind(
    pool: &AnyPool,
    run: RunId,
    kind: CheckpointKind,
) -> Result<Option<Checkpoint>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM checkpoints WHERE run_id = $1 AND kind = $2 \
         ORDER BY created_at DESC"
    ))
    .bind(run.to_string())
    .bind(kind.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}
