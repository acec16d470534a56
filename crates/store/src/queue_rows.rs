//! Queue rows: their columns, decoding and the statements every queue operation shares,
//! written once. Positions are dense (1, 2, 3…) after every change, so a row's stored
//! position is the one the API shows.

use draftsmith_core::api::QueuedPrompt;
use draftsmith_core::{AppId, EngineKind, QueueItemId, RunStatus, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::sql::{self, Tx};

/// The `run_queue` columns a [`QueuedPrompt`] is read from.
pub(crate) const COLUMNS: &str = "id, app_id, position, input, requested_model_id, \
    resolved_model_id, engine, chat_session_id, created_by, created_at";

/// A row of `SELECT {COLUMNS}`.
pub(crate) fn from_row(row: &AnyRow) -> Result<QueuedPrompt> {
    Ok(QueuedPrompt {
        id: sql::id(row, "id")?,
        app_id: sql::id(row, "app_id")?,
        position: row.try_get("position")?,
        input: row.try_get("input")?,
        requested_model_id: row.try_get("requested_model_id")?,
        resolved_model_id: row.try_get("resolved_model_id")?,
        engine: sql::decode(row, "engine", EngineKind::parse)?,
        chat_session_id: sql::id_opt(row, "chat_session_id")?,
        created_by: UserId(row.try_get("created_by")?),
        created_at: sql::time(row, "created_at")?,
    })
}

/// The app's queue, next first, inside a transaction.
pub(crate) async fn list_in_tx(tx: &mut Tx, app: AppId) -> Result<Vec<QueuedPrompt>> {
    list(&mut **tx, app).await
}

/// The app's queue in order, read by `db` (a transaction's connection or the pool).
pub(crate) async fn list<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    app: AppId,
) -> Result<Vec<QueuedPrompt>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM run_queue WHERE app_id = $1 ORDER BY position, created_at"
    ))
    .bind(app.to_string())
    .fetch_all(db)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Writes `order` back as positions 1, 2, 3… (the caller holds the app row's lock).
pub(crate) async fn renumber(tx: &mut Tx, order: &[QueueItemId]) -> Result<()> {
    for (index, id) in order.iter().enumerate() {
        sqlx::query("UPDATE run_queue SET position = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(index as i64 + 1)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Whether a failed run holds the app's queue: its latest run failed and the queue was not
/// resumed after it.
pub(crate) async fn held_in_tx(tx: &mut Tx, app: AppId) -> Result<bool> {
    let row = sqlx::query(
        "SELECT r.id, r.status, a.queue_resumed_after FROM runs r JOIN apps a ON a.id = r.app_id \
         WHERE r.app_id = $1 ORDER BY r.created_at DESC, r.id DESC LIMIT 1",
    )
    .bind(app.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let status: String = row.try_get("status")?;
    let id: String = row.try_get("id")?;
    let resumed: Option<String> = row.try_get("queue_resumed_after")?;
    Ok(status == RunStatus::Failed.as_str() && resumed.as_deref() != Some(id.as_str()))
}
