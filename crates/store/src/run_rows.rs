//! Run rows: their columns and decoding, written once for every read of a run.

use draftsmith_core::api::{Run, stream_url};
use draftsmith_core::{AppId, EngineKind, EventError, RunId, RunStatus, UserId};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Executor, Row};

use crate::error::{Result, StoreError};
use crate::rules;
use crate::sql;
use crate::usage_columns;

/// The `runs` columns a [`Run`] is read from.
const COLUMNS: &str = "id, app_id, chat_session_id, created_by, status, engine, \
    requested_model_id, resolved_model_id, input, base_revision, cancel_requested_by, \
    error_code, error_message, summary, result_revision, timing_metrics_ms, next_seq, \
    created_at, started_at, ended_at, input_params";

/// `SELECT` of every run column, for a statement to finish with its `WHERE`.
pub(crate) fn select() -> String {
    format!("SELECT {COLUMNS}, {} FROM runs", usage_columns::RUN_COLUMNS)
}

fn error_from_row(row: &AnyRow) -> Result<Option<EventError>> {
    if row.try_get::<Option<String>, _>("error_code")?.is_none() {
        return Ok(None);
    }
    let message: Option<String> = row.try_get("error_message")?;
    Ok(Some(EventError {
        code: sql::wire(row, "error_code")?,
        message: message.unwrap_or_default(),
        field: None,
        details: None,
    }))
}

/// A row of [`select`].
pub(crate) fn from_row(row: &AnyRow) -> Result<Run> {
    let run_id: RunId = sql::id(row, "id")?;
    let app_id: AppId = sql::id(row, "app_id")?;
    Ok(Run {
        run_id,
        app_id,
        status: sql::decode(row, "status", RunStatus::parse)?,
        engine: sql::decode(row, "engine", EngineKind::parse)?,
        requested_model_id: row.try_get("requested_model_id")?,
        resolved_model_id: row.try_get("resolved_model_id")?,
        chat_session_id: sql::id(row, "chat_session_id")?,
        stream_url: stream_url(app_id, run_id),
        input: row.try_get("input")?,
        created_by: UserId(row.try_get("created_by")?),
        base_revision: row.try_get("base_revision")?,
        result_revision: row.try_get("result_revision")?,
        summary: row.try_get("summary")?,
        error: error_from_row(row)?,
        cancel_requested_by: row.try_get("cancel_requested_by")?,
        timing_metrics_ms: sql::json(row, "timing_metrics_ms")?,
        last_seq: row.try_get("next_seq")?,
        created_at: sql::time(row, "created_at")?,
        started_at: sql::time_opt(row, "started_at")?,
        ended_at: sql::time_opt(row, "ended_at")?,
        input_params: sql::json(row, "input_params")?,
        usage: usage_columns::totals(row)?,
    })
}

/// One run, through a pool or inside a transaction.
pub(crate) async fn get<'c, E>(executor: E, id: RunId) -> Result<Run>
where
    E: Executor<'c, Database = Any>,
{
    let row = sqlx::query(&format!("{} WHERE id = $1", select()))
        .bind(id.to_string())
        .fetch_optional(executor)
        .await?
        .ok_or(StoreError::NotFound("run"))?;
    from_row(&row)
}

/// The app's active run, if any.
pub(crate) async fn active(pool: &AnyPool, app: AppId) -> Result<Option<RunId>> {
    let row = sqlx::query(&format!(
        "SELECT id FROM runs WHERE app_id = $1 AND status IN ({})",
        rules::active_sql()
    ))
    .bind(app.to_string())
    .fetch_optional(pool)
    .await?;
    row.map(|row| sql::id(&row, "id")).transpose()
}
