//! A run's event log and the status it implies. Every status change rides on an event
//! append, in one statement that also claims the event's sequence number, so the log and
//! the status can never disagree and a terminal run accepts no more events. Which status an
//! event moves to, from which, is [`crate::rules`]'.

use draftsmith_core::{AppEventBody, AppId, Diagnostic, EventBody, RunEvent, RunId, Timestamp};
use sqlx::{AnyPool, Row};

use crate::app_log;
use crate::error::{Result, StoreError};
use crate::rules;
use crate::sql::{self, Tx};
use crate::usage::{self, NewModelCall};
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
    let ending = body.terminal_status();
    // An ending is told in the app's log too, whose counter is the app row: lock it first,
    // as every transaction that locks both does, claiming the event's seq as it does.
    let app = match ending {
        Some(_) => Some(claim_app_event(tx, run).await?),
        None => None,
    };
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
    if let (Some((app, seq)), Some(status)) = (app, ending) {
        let ended = AppEventBody::RunEnded {
            run_id: run,
            status,
        };
        app_log::insert(tx, &app_log::claimed(app, seq, ended)).await?;
    }
    Ok(event)
}

/// Appends `events`, none of which changes the run's status (the engine's progress), in
/// order with consecutive `seq`s, after recording the model `calls` they follow (all of
/// `run`): one statement claims the seqs and adds the calls to the run's totals while the
/// run is active ([`StoreError::RunEnded`] otherwise), and multi-row statements write the
/// calls and the events.
pub(crate) async fn append_progress_in_tx(
    tx: &mut Tx,
    run: RunId,
    calls: &[NewModelCall],
    events: Vec<(EventBody, Vec<Diagnostic>)>,
) -> Result<Vec<RunEvent>> {
    debug_assert!(
        events
            .iter()
            .all(|(body, _)| rules::status_after(body).is_none())
    );
    debug_assert!(calls.iter().all(|call| call.run == run));
    let count = i64::try_from(events.len()).map_err(|_| StoreError::Corrupt("batch".into()))?;
    let now = Timestamp::now();
    let added = usage::added_by(calls);
    let statement = format!(
        "UPDATE runs SET next_seq = next_seq + $2, \
           usage_input_tokens = usage_input_tokens + $3, \
           usage_output_tokens = usage_output_tokens + $4, \
           usage_cache_read_tokens = usage_cache_read_tokens + $5, \
           usage_cache_write_tokens = usage_cache_write_tokens + $6, \
           usage_reasoning_tokens = usage_reasoning_tokens + $7, \
           usage_cost_micro_usd = usage_cost_micro_usd + $8, \
           usage_model_calls = usage_model_calls + $9, \
           usage_estimated_calls = usage_estimated_calls + $10 \
         WHERE id = $1 AND status IN ({}) RETURNING next_seq, app_id, usage_model_calls",
        rules::active_sql()
    );
    let mut claim = sqlx::query(&statement).bind(run.to_string()).bind(count);
    for value in added {
        claim = claim.bind(value);
    }
    let claimed = claim
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::RunEnded)?;
    if !calls.is_empty() {
        let calls_now: i64 = claimed.try_get("usage_model_calls")?;
        let first = calls_now - added[6] + 1;
        usage::insert_calls(tx, calls, first).await?;
    }
    let last: i64 = claimed.try_get("next_seq")?;
    let app_id: AppId = sql::id(&claimed, "app_id")?;
    let written: Vec<RunEvent> = events
        .into_iter()
        .zip(last - count + 1..)
        .map(|((body, diagnostics), seq)| RunEvent {
            stage: body.stage(),
            body,
            run_id: run,
            app_id,
            seq,
            ts: now,
            diagnostics,
        })
        .collect();
    insert_events(tx, &written).await?;
    Ok(written)
}

/// Writes `events`, their `seq`s already claimed, in multi-row statements.
pub(crate) async fn insert_events(tx: &mut Tx, events: &[RunEvent]) -> Result<()> {
    for chunk in events.chunks(sql::CHUNK) {
        let statement = format!(
            "INSERT INTO run_events (run_id, seq, event_type, body, created_at) VALUES {}",
            sql::rows(chunk.len(), 5)
        );
        let mut query = sqlx::query(&statement);
        for event in chunk {
            query = query
                .bind(event.run_id.to_string())
                .bind(event.seq)
                .bind(event.body.event_type())
                .bind(sql::to_json(event)?)
                .bind(event.ts.as_micros());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Locks the app row of `run` and claims its next app event `seq`, in one statement: the
/// run's app and the seq (the run must exist: [`StoreError::RunEnded`] otherwise, as for
/// any event refused).
async fn claim_app_event(tx: &mut Tx, run: RunId) -> Result<(AppId, i64)> {
    let row = sqlx::query(
        "UPDATE apps SET next_event_seq = next_event_seq + 1 \
         WHERE id = (SELECT app_id FROM runs WHERE id = $1) RETURNING id, next_event_seq",
    )
    .bind(run.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::RunEnded)?;
    Ok((sql::id(&row, "id")?, row.try_get("next_event_seq")?))
}

/// Events with `seq > after`, in order.
pub(crate) async fn events_after(
    pool: &AnyPool,
    run: RunId,
    after: i64,
    limit: i64,
) -> Result<Vec<RunEvent>> {
    sql::log_after(pool, "run_events", "run_id", run.to_string(), after, limit).await
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
