//! A run's event log and the status it implies. Every status change rides on an event
//! append, in one statement that also claims the event's sequence number, so the log and
//! the status can never disagree and a terminal run accepts no more events. Which status an
//! event moves to, from which, is [`crate::rules`]'.

use draftsmith_core::{Diagnostic, EventBody, RunEvent, RunId, Timestamp};
use sqlx::{AnyPool, Row};

use crate::error::{Result, StoreError};
use crate::rules;
use crate::sql::{self, Tx};
use crate::usage_columns;

/// The run columns an event may set besides its status.
struct Outcome {
    error_code: Option<String>,
    error_message: Option<String>,
    summary: Option<String>,
    result_revision: Option<i64>,
}

impl Outcome {
    fn of(body: &EventBody) -> Self {
        let mut outcome = Self {
            error_code: None,
            error_message: None,
            summary: None,
            result_revision: None,
        };
        match body {
            EventBody::RunFailed { error, .. } => {
                outcome.error_code = Some(error.code.as_str().to_owned());
                outcome.error_message = Some(error.message.clone());
            }
            EventBody::RunCompleted {
                revision, summary, ..
            } => {
                outcome.summary = Some(summary.clone());
                outcome.result_revision = Some(*revision);
            }
            _ => {}
        }
        outcome
    }
}

/// Claims the next `seq` and applies the status change `body` implies, only while the run
/// is in a status that accepts it ([`StoreError::RunEnded`] otherwise); then writes the
/// event, a terminal one with the run's usage totals.
pub(crate) async fn append_in_tx(
    tx: &mut Tx,
    run: RunId,
    mut body: EventBody,
    diagnostics: Vec<Diagnostic>,
) -> Result<RunEvent> {
    let now = Timestamp::now();
    let status = rules::status_after(&body);
    let outcome = Outcome::of(&body);
    let claimed = sqlx::query(&format!(
        "UPDATE runs SET next_seq = next_seq + 1, \
           status = COALESCE($2, status), \
           started_at = CASE WHEN $2 = 'running' THEN $3 ELSE started_at END, \
           ended_at = CASE WHEN $2 IS NOT NULL AND $2 <> 'running' THEN $3 ELSE ended_at END, \
           error_code = COALESCE($4, error_code), error_message = COALESCE($5, error_message), \
           summary = COALESCE($6, summary), result_revision = COALESCE($7, result_revision) \
         WHERE id = $1 AND status IN ({}) RETURNING next_seq, app_id, {}",
        rules::sql_list(&rules::accepted_from(&body)),
        usage_columns::RUN_COLUMNS
    ))
    .bind(run.to_string())
    .bind(status.map(|s| s.as_str().to_owned()))
    .bind(now.as_micros())
    .bind(outcome.error_code)
    .bind(outcome.error_message)
    .bind(outcome.summary)
    .bind(outcome.result_revision)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(claimed) = claimed else {
        return Err(StoreError::RunEnded);
    };
    if body.terminal_status().is_some() {
        // The run's usage as it ends, read in the statement that ends it.
        body.set_usage(usage_columns::totals(&claimed)?);
    }
    let event = RunEvent {
        stage: body.stage(),
        body,
        run_id: run,
        app_id: sql::id(&claimed, "app_id")?,
        seq: claimed.try_get("next_seq")?,
        ts: now,
        diagnostics,
    };
    sqlx::query(
        "INSERT INTO run_events (run_id, seq, event_type, body, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(run.to_string())
    .bind(event.seq)
    .bind(event.body.event_type())
    .bind(sql::to_json(&event)?)
    .bind(now.as_micros())
    .execute(&mut **tx)
    .await?;
    Ok(event)
}

/// Events with `seq > after`, in order.
pub(crate) async fn events_after(
    pool: &AnyPool,
    run: RunId,
    after: i64,
    limit: i64,
) -> Result<Vec<RunEvent>> {
    let rows = sqlx::query(
        "SELECT body FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(run.to_string())
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|row| sql::json(row, "body")).collect()
}

/// Records the run's phase timings.
pub(crate) async fn set_timing_in_tx(
    tx: &mut Tx,
    run: RunId,
    timing: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    sqlx::query("UPDATE runs SET timing_metrics_ms = $2 WHERE id = $1")
        .bind(run.to_string())
        .bind(sql::to_json(timing)?)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
