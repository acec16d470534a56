//! A run's event log and the status it implies. Every status change rides on an event
//! append, in one statement that also claims the event's sequence number, so the log and
//! the status can never disagree and a terminal run accepts no more events. Which status an
//! event moves to, from which, is [`crate::rules`]'.

use draftsmith_core::{
    AppEventBody, AppId, Diagnostic, EventBody, RunEvent, RunId, RunStatus, Timestamp,
};
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
    fn none() -> Self {
        Self {
            error_code: None,
            error_message: None,
            summary: None,
            result_revision: None,
        }
    }

    fn of(body: &EventBody) -> Self {
        let mut outcome = Self::none();
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

/// The PostgreSQL `NOTIFY` channel on which each claim of `seq`s announces
/// `run_id:seq:owner` (the run's last event so far, and the instance executing the run)
/// when its transaction commits, so followers in every instance sharing the database read
/// the new events from the log. The owner publishes its own events in process, so it
/// need not read them back.
pub const RUN_EVENTS_CHANNEL: &str = "draftsmith_run_events";

/// Events appended under one claim of `seq`s: progress (no status change), then at most one
/// event that may move the status, after the model calls they follow (all of the run), and
/// the run's timings when they are known.
#[derive(Default)]
pub(crate) struct Batch<'a> {
    pub calls: &'a [NewModelCall],
    pub progress: Vec<(EventBody, Vec<Diagnostic>)>,
    pub last: Option<(EventBody, Vec<Diagnostic>)>,
    pub timing: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// Claims the next `seq` and applies the status change `body` implies, only while the run
/// is in a status that accepts it ([`StoreError::RunEnded`] otherwise); then writes the
/// event, a terminal one with the run's usage totals.
pub(crate) async fn append_in_tx(
    tx: &mut Tx,
    run: RunId,
    body: EventBody,
    diagnostics: Vec<Diagnostic>,
) -> Result<RunEvent> {
    let batch = Batch {
        last: Some((body, diagnostics)),
        ..Batch::default()
    };
    append_batch_in_tx(tx, run, batch)
        .await?
        .pop()
        .ok_or_else(|| StoreError::Corrupt("an append without its event".into()))
}

/// Appends `events`, none of which changes the run's status (the engine's progress), in
/// order with consecutive `seq`s while the run is active ([`StoreError::RunEnded`]
/// otherwise), after recording the model `calls` they follow.
pub(crate) async fn append_progress_in_tx(
    tx: &mut Tx,
    run: RunId,
    calls: &[NewModelCall],
    events: Vec<(EventBody, Vec<Diagnostic>)>,
) -> Result<Vec<RunEvent>> {
    let batch = Batch {
        calls,
        progress: events,
        ..Batch::default()
    };
    append_batch_in_tx(tx, run, batch).await
}

/// Appends `batch` in order with consecutive `seq`s. One statement claims the seqs, adds the
/// calls to the run's totals, records the timings, applies the status change of the last
/// event and, on PostgreSQL, notifies [`RUN_EVENTS_CHANNEL`], only while the run is in a status that accepts it ([`StoreError::RunEnded`]
/// otherwise); multi-row statements then write the calls and the events, a terminal one
/// with the run's usage totals.
pub(crate) async fn append_batch_in_tx(
    tx: &mut Tx,
    run: RunId,
    batch: Batch<'_>,
) -> Result<Vec<RunEvent>> {
    debug_assert!(
        batch
            .progress
            .iter()
            .all(|(body, _)| rules::status_after(body).is_none())
    );
    debug_assert!(batch.calls.iter().all(|call| call.run == run));
    let now = Timestamp::now();
    let last = batch.last.as_ref().map(|(body, _)| body);
    let status = last.and_then(rules::status_after);
    let ending = last.and_then(EventBody::terminal_status);
    // An ending is told in the app's log too, whose counter is the app row: lock it first,
    // as every transaction that locks both does, claiming the event's seq as it does.
    let app = match ending {
        Some(_) => Some(claim_app_event(tx, run).await?),
        None => None,
    };
    let accepted = match last {
        Some(body) => rules::accepted_from(body),
        None => RunStatus::ACTIVE.to_vec(),
    };
    let outcome = last.map(Outcome::of).unwrap_or_else(Outcome::none);
    let count = batch.progress.len() + usize::from(batch.last.is_some());
    let count = i64::try_from(count).map_err(|_| StoreError::Corrupt("batch".into()))?;
    let added = usage::added_by(batch.calls);
    // Announced in the statement that claims the seqs; PostgreSQL delivers it on commit.
    let notify = if tx.backend_name() == "PostgreSQL" {
        format!(
            ", CAST(pg_notify('{RUN_EVENTS_CHANNEL}', \
             id || ':' || next_seq || ':' || COALESCE(owner_instance, '')) AS TEXT)"
        )
    } else {
        String::new()
    };
    let statement = format!(
        "UPDATE runs SET next_seq = next_seq + $2, \
           status = COALESCE($3, status), \
           started_at = CASE WHEN $3 = 'running' THEN $4 ELSE started_at END, \
           ended_at = CASE WHEN $3 IS NOT NULL AND $3 <> 'running' THEN $4 ELSE ended_at END, \
           error_code = COALESCE($5, error_code), error_message = COALESCE($6, error_message), \
           summary = COALESCE($7, summary), result_revision = COALESCE($8, result_revision), \
           timing_metrics_ms = COALESCE($9, timing_metrics_ms), {} \
         WHERE id = $1 AND status IN ({}) RETURNING next_seq, app_id, {}{notify}",
        usage_columns::add_to_run(10),
        rules::sql_list(&accepted),
        usage_columns::RUN_COLUMNS
    );
    let mut claim = sqlx::query(&statement)
        .bind(run.to_string())
        .bind(count)
        .bind(status.map(|s| s.as_str().to_owned()))
        .bind(now.as_micros())
        .bind(outcome.error_code)
        .bind(outcome.error_message)
        .bind(outcome.summary)
        .bind(outcome.result_revision)
        .bind(batch.timing.map(sql::to_json).transpose()?);
    for value in added {
        claim = claim.bind(value);
    }
    let Some(claimed) = claim.fetch_optional(&mut **tx).await? else {
        return Err(StoreError::RunEnded);
    };
    let totals = usage_columns::totals(&claimed)?;
    if !batch.calls.is_empty() {
        let first = usage_columns::column(totals.model_calls) - added[6] + 1;
        usage::insert_calls(tx, batch.calls, first).await?;
    }
    let next_seq: i64 = claimed.try_get("next_seq")?;
    let app_id: AppId = sql::id(&claimed, "app_id")?;
    let mut bodies = batch.progress;
    if let Some((mut body, diagnostics)) = batch.last {
        if ending.is_some() {
            // The run's usage as it ends, read in the statement that ends it.
            body.set_usage(totals);
        }
        bodies.push((body, diagnostics));
    }
    let written: Vec<RunEvent> = bodies
        .into_iter()
        .zip(next_seq - count + 1..)
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
    if let (Some((app, seq)), Some(status)) = (app, ending) {
        let ended = AppEventBody::RunEnded {
            run_id: run,
            status,
        };
        app_log::insert(tx, &app_log::claimed(app, seq, ended)).await?;
    }
    Ok(written)
}

/// Writes `events`, their `seq`s already claimed, in multi-row statements.
pub(crate) async fn insert_events(tx: &mut Tx, events: &[RunEvent]) -> Result<()> {
    let marks = sql::Marks::of(tx);
    for chunk in events.chunks(sql::CHUNK) {
        let statement = format!(
            "INSERT INTO run_events (run_id, seq, event_type, body, created_at) VALUES {}",
            marks.rows(chunk.len(), 5)
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

/// Records the run's phase timings, in one statement (its own transaction).
pub(crate) async fn set_timing(
    writer: &AnyPool,
    run: RunId,
    timing: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    sqlx::query("UPDATE runs SET timing_metrics_ms = $2 WHERE id = $1")
        .bind(run.to_string())
        .bind(sql::to_json(timing)?)
        .execute(writer)
        .await?;
    Ok(())
}
