//! A run's event log and the status it implies. Every status change rides on an event
//! append, in one statement that also claims the event's sequence number, so the log and
//! the status can never disagree and a terminal run accepts no more events. Which status an
//! event moves to, from which, is [`crate::rules`]'.

use draftsmith_core::{
    AppEventBody, AppId, Diagnostic, EventBody, RunEvent, RunId, RunStatus, Timestamp, UsageTotals,
};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::app_log;
use crate::error::{Result, StoreError};
use crate::rules;
use crate::sql::{self, Tx};
use crate::usage::{self, NewModelCall};
use crate::usage_columns;
use crate::writer::{self, Writer};

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
/// when its transaction commits, while another instance watches the run
/// ([`crate::RunStore::watch_runs`]), so its followers read the new events from the log.
/// The owner publishes its own events in process, so it need not read them back.
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

impl<'a> Batch<'a> {
    /// `events` after `calls`, which [`fits_at_once`] accepted: the last event moves the
    /// status when it does, the others are progress.
    pub(crate) fn leaving_active(
        calls: &'a [NewModelCall],
        mut events: Vec<(EventBody, Vec<Diagnostic>)>,
    ) -> Self {
        let last = match events.last() {
            Some((body, _)) if rules::status_after(body).is_some() => events.pop(),
            _ => None,
        };
        Self {
            calls,
            progress: events,
            last,
            timing: None,
        }
    }
}

/// Whether `events` after `calls` make one batch for [`append_at_once`]: at least one
/// event, every call of `run`, and no event but the last moving the status, the last not
/// to an ending.
pub(crate) fn fits_at_once(
    run: RunId,
    calls: &[NewModelCall],
    events: &[(EventBody, Vec<Diagnostic>)],
) -> bool {
    let Some(((last, _), earlier)) = events.split_last() else {
        return false;
    };
    calls.iter().all(|call| call.run == run)
        && last.terminal_status().is_none()
        && earlier
            .iter()
            .all(|(body, _)| rules::status_after(body).is_none())
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
/// event and, on PostgreSQL, notifies [`RUN_EVENTS_CHANNEL`] (while watched), only while
/// the run is in a status that accepts it ([`StoreError::RunEnded`] otherwise); multi-row
/// statements then write the calls and the events, a terminal one with the run's usage
/// totals.
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
    let ending = last.and_then(EventBody::terminal_status);
    // An ending is told in the app's log too, whose counter is the app row: lock it first,
    // as every transaction that locks both does, claiming the event's seq as it does.
    let app = match ending {
        Some(_) => Some(claim_app_event(tx, run).await?),
        None => None,
    };
    let count = batch_len(&batch)?;
    let added = usage::added_by(batch.calls);
    let postgres = tx.backend_name() == "PostgreSQL";
    let statement = claim_sql(last, postgres);
    let claim = bind_claim(sqlx::query(&statement), run, count, now, &batch, added)?;
    let Some(claimed) = claim.fetch_optional(&mut **tx).await? else {
        return Err(StoreError::RunEnded);
    };
    write_claimed(tx, run, batch, &claimed, app, now).await
}

/// Writes `batch` under the claim [`claim_sql`] answered with `claimed` (at `now`): its
/// calls, its events (an ending with the run's usage totals as the claim read them) and,
/// for an ending, the app's event at the claimed `app_event`.
pub(crate) async fn write_claimed(
    tx: &mut Tx,
    run: RunId,
    batch: Batch<'_>,
    claimed: &AnyRow,
    app_event: Option<(AppId, i64)>,
    now: Timestamp,
) -> Result<Vec<RunEvent>> {
    let count = batch_len(&batch)?;
    let last = batch.last.as_ref().map(|(body, _)| body);
    let ending = last.and_then(EventBody::terminal_status);
    let totals = usage_columns::totals(claimed)?;
    if !batch.calls.is_empty() {
        let added = usage::added_by(batch.calls);
        let first = usage_columns::column(totals.model_calls) - added[6] + 1;
        usage::insert_calls(tx, batch.calls, first).await?;
    }
    let next_seq: i64 = claimed.try_get("next_seq")?;
    let app_id: AppId = sql::id(claimed, "app_id")?;
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
    if let (Some((app, seq)), Some(status)) = (app_event, ending) {
        let ended = AppEventBody::RunEnded {
            run_id: run,
            status,
        };
        app_log::insert(tx, &app_log::claimed(app, seq, ended)).await?;
    }
    Ok(written)
}

/// The number of events `batch` appends.
pub(crate) fn batch_len(batch: &Batch<'_>) -> Result<i64> {
    let count = batch.progress.len() + usize::from(batch.last.is_some());
    i64::try_from(count).map_err(|_| StoreError::Corrupt("batch".into()))
}

/// The statement claiming a batch's `seq`s with `last` as its last event (`$1` the run,
/// `$2` the count, `$3`–`$9` the status change, its time and outcome and the timings,
/// `$10`–`$17` the usage added): it returns the run's new `next_seq`, its app and its
/// usage totals, and on PostgreSQL notifies [`RUN_EVENTS_CHANNEL`] while another instance
/// watches the run.
pub(crate) fn claim_sql(last: Option<&EventBody>, postgres: bool) -> String {
    let accepted = match last {
        Some(body) => rules::accepted_from(body),
        None => RunStatus::ACTIVE.to_vec(),
    };
    // Announced in the statement that claims the seqs, while another instance watches the
    // run (`$4` is now); PostgreSQL delivers it on commit.
    let notify = if postgres {
        format!(
            ", CASE WHEN watched_until > $4 THEN CAST(pg_notify('{RUN_EVENTS_CHANNEL}', \
             id || ':' || next_seq || ':' || COALESCE(owner_instance, '')) AS TEXT) END"
        )
    } else {
        String::new()
    };
    format!(
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
    )
}

/// Binds [`claim_sql`]'s parameters for `batch`.
pub(crate) fn bind_claim<'q>(
    query: sql::Query<'q>,
    run: RunId,
    count: i64,
    now: Timestamp,
    batch: &Batch<'_>,
    added: [i64; 8],
) -> Result<sql::Query<'q>> {
    let last = batch.last.as_ref().map(|(body, _)| body);
    let status = last.and_then(rules::status_after);
    let outcome = last.map(Outcome::of).unwrap_or_else(Outcome::none);
    let mut query = query
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
        query = query.bind(value);
    }
    Ok(query)
}

/// Stands where the app's id goes in an event's stored text until the statement writing it
/// fills it in.
const APP_MARK: AppId = AppId(uuid::Uuid::nil());
/// Stands where the `seq` goes, likewise (in app events too: [`crate::app_log::unclaimed`]).
pub(crate) const SEQ_MARK: i64 = i64::MIN;

/// An event's stored text around its app and `seq`, which the database fills in as it
/// claims them: the text before the app's id and the text after the `seq`. The envelope
/// writes its `app_id` and `seq` after the body and before fields that hold only strings
/// (the time, the stage, the diagnostics' code and message), so the last `"app_id":…,
/// "seq":…` in the text is the envelope's; any other is inside a string, its quotes
/// escaped.
fn split_at_claim(event: &RunEvent) -> Result<(String, String)> {
    let text = sql::to_json(event)?;
    let marked = format!("\"app_id\":\"{APP_MARK}\",\"seq\":{SEQ_MARK}");
    let at = text
        .rfind(&marked)
        .ok_or_else(|| StoreError::Corrupt("an event without its app and seq".into()))?;
    let app_at = at + "\"app_id\":\"".len();
    Ok((
        text[..app_at].to_owned(),
        text[at + marked.len()..].to_owned(),
    ))
}

/// Each of `events` (carrying [`APP_MARK`] and [`SEQ_MARK`]) as the JSON array
/// `[event type, text before its app, text after its seq]` that [`events_cte`] writes.
pub(crate) fn claim_texts(events: &[RunEvent]) -> Result<Vec<serde_json::Value>> {
    events
        .iter()
        .map(|event| {
            let (before, after) = split_at_claim(event)?;
            Ok(serde_json::json!([event.body.event_type(), before, after]))
        })
        .collect()
}

/// The events of a batch before their claim: each with [`APP_MARK`] and [`SEQ_MARK`] for
/// the statement to fill in, a terminal one with [`usage_marks`] for its usage.
pub(crate) fn unclaimed(run: RunId, batch: Batch<'_>, now: Timestamp) -> Vec<RunEvent> {
    batch
        .progress
        .into_iter()
        .chain(batch.last)
        .map(|(mut body, diagnostics)| {
            if body.terminal_status().is_some() {
                body.set_usage(usage_marks());
            }
            RunEvent {
                stage: body.stage(),
                body,
                run_id: run,
                app_id: APP_MARK,
                seq: SEQ_MARK,
                ts: now,
                diagnostics,
            }
        })
        .collect()
}

/// `events` as the claim `claimed` numbered them (its `next_seq` the last one's), with its
/// app, and a terminal one with the run's usage totals as the claim returned them.
pub(crate) fn claimed_as(events: &mut [RunEvent], claimed: &AnyRow) -> Result<()> {
    let next_seq: i64 = claimed.try_get("next_seq")?;
    let app_id: AppId = sql::id(claimed, "app_id")?;
    let count = i64::try_from(events.len()).map_err(|_| StoreError::Corrupt("batch".into()))?;
    let totals = match events.last() {
        Some(last) if last.body.terminal_status().is_some() => {
            Some(usage_columns::totals(claimed)?)
        }
        _ => None,
    };
    for (event, seq) in events.iter_mut().zip(next_seq - count + 1..) {
        event.app_id = app_id;
        event.seq = seq;
        if let Some(totals) = totals {
            event.body.set_usage(totals);
        }
    }
    Ok(())
}

/// The marker of the `i`-th of [`usage_columns::RUN_COLUMNS`]: a count no total reaches.
const fn usage_mark(i: u64) -> u64 {
    u64::MAX - i
}

/// A usage standing in a terminal event's text until the statement that ends the run fills
/// in its totals: each count the marker of its run column.
fn usage_marks() -> UsageTotals {
    let mark = usage_mark;
    UsageTotals {
        input_tokens: mark(0),
        output_tokens: mark(1),
        cache_read_tokens: mark(2),
        cache_write_tokens: mark(3),
        reasoning_tokens: mark(4),
        cost_micro_usd: mark(5),
        model_calls: mark(6),
        estimated_calls: mark(7),
    }
}

/// The text of [`usage_marks`], and the SQL expression writing the same object with the
/// claim's totals (the columns of `claim`) in place of the marks.
fn usage_sql(claim: &str) -> Result<(String, String)> {
    let text = sql::to_json(&usage_marks())?;
    let mut expression = format!("'{text}'");
    for (i, column) in (0u64..).zip(usage_columns::RUN_COLUMNS.split(", ")) {
        let mark = usage_mark(i).to_string();
        expression = expression.replace(&mark, &format!("' || {claim}.{column} || '"));
    }
    Ok((text, expression))
}

/// The CTE `events` of a statement whose CTE `claim` claimed `$2` seqs of run `$1` at `$4`
/// ([`claim_sql`]): it writes each event of the JSON array in parameter `texts`
/// ([`claim_texts`]) around the run's app and its seq; with `ending`, a terminal event's
/// [`usage_marks`] become the run's totals as the claim returned them.
pub(crate) fn events_cte(texts: usize, ending: bool) -> Result<String> {
    let from = format!(
        "FROM claim, json_array_elements(CAST(${texts} AS JSON)) WITH ORDINALITY AS e(v, ord)"
    );
    Ok(format!(
        "events AS ({})",
        insert_claimed("claim", "e.ord", "e.v", &from, ending)?
    ))
}

/// On SQLite, the statement that follows the claim ([`claim_sql`]) in a script and writes
/// what [`events_cte`] writes, reading the claim from the run's row it updated; nothing
/// when the claim changed no row (the run had ended: the caller rolls the script back).
pub(crate) fn events_after_claim(texts: usize, ending: bool) -> Result<String> {
    let from = format!("FROM runs r, json_each(${texts}) e WHERE r.id = $1 AND changes() = 1");
    insert_claimed("r", "(e.key + 1)", "e.value", &from, ending)
}

/// The insert of a batch's events from its JSON array: `claim` is where the claim's
/// columns are read, `ord` an event's place in the array (from 1), `v` its entry, `from`
/// the rest of the statement.
fn insert_claimed(claim: &str, ord: &str, v: &str, from: &str, ending: bool) -> Result<String> {
    let before = if ending {
        let (marks, usage) = usage_sql(claim)?;
        format!("replace({v}->>1, '{marks}', {usage})")
    } else {
        format!("({v}->>1)")
    };
    let seq = format!("{claim}.next_seq - $2 + {ord}");
    Ok(format!(
        "INSERT INTO run_events (run_id, seq, event_type, body, created_at) \
           SELECT $1, {seq}, {v}->>0, \
             {before} || {claim}.app_id || '\",\"seq\":' \
               || CAST({seq} AS TEXT) || ({v}->>2), $4 {from}"
    ))
}

/// Appends `batch`, which leaves the run active (no ending), and records its model calls,
/// in one call to the database instead of five (the transaction's start, the claim, the
/// calls, the events and the commit). On PostgreSQL one statement, its own transaction;
/// on SQLite a script of three framed as one transaction ([`writer::framed`]), one call to
/// the connection's thread.
/// The claim takes the `seq`s as [`append_batch_in_tx`]'s does, and each event's stored
/// text is written around them ([`split_at_claim`]), so what is stored is what Rust writes.
pub(crate) async fn append_at_once(
    writer: &Writer,
    run: RunId,
    batch: Batch<'_>,
) -> Result<Vec<RunEvent>> {
    let last = batch.last.as_ref().map(|(body, _)| body);
    debug_assert!(last.and_then(EventBody::terminal_status).is_none());
    debug_assert!(batch.calls.iter().all(|call| call.run == run));
    let now = Timestamp::now();
    let count = batch_len(&batch)?;
    let added = usage::added_by(batch.calls);
    let sqlite = writer.is_sqlite();
    let columns = "INSERT INTO model_calls (run_id, seq, app_id, user_id, model, step, \
         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
         reasoning_tokens, cost_micro_usd, estimated, ms, created_at)";
    // A call's columns after its run and `seq`, read from its JSON array `c`.
    let call_columns = |c: &str| {
        (0..13)
            .map(|i| match i {
                0..3 => format!("{c}->>{i}"),
                _ => format!("CAST({c}->>{i} AS BIGINT)"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let statement = if sqlite {
        // The calls are written only after a claim (the run is still active); when the claim
        // changed no row, the script writes nothing and commits nothing.
        writer::framed(&format!(
            "{}; {}; {columns} SELECT $1, r.usage_model_calls - $16 + (c.key + 1), {} \
             FROM runs r, json_each($19) c WHERE r.id = $1 AND r.status IN ({})",
            claim_sql(last, false),
            events_after_claim(18, false)?,
            call_columns("c.value"),
            rules::active_sql()
        ))
    } else {
        format!(
            "WITH claim AS ({}), {}, \
             calls AS ({columns} SELECT $1, claim.usage_model_calls - $16 + c.ord, {} \
               FROM claim, json_array_elements(CAST($19 AS JSON)) WITH ORDINALITY AS c(v, ord)) \
             SELECT next_seq, app_id FROM claim",
            claim_sql(last, true),
            events_cte(18, false)?,
            call_columns("c.v")
        )
    };
    let query = bind_claim(sqlx::query(&statement), run, count, now, &batch, added)?;
    let calls: Vec<serde_json::Value> = batch.calls.iter().map(call_values_of).collect();
    let mut events = unclaimed(run, batch, now);
    let query = query
        .bind(sql::to_json(&claim_texts(&events)?)?)
        .bind(sql::to_json(&calls)?);
    // A script answers every row its statements return: the claim's alone.
    let claimed = writer.fetch_all_at_once(query).await?.pop();
    let claimed = claimed.ok_or(StoreError::RunEnded)?;
    claimed_as(&mut events, &claimed)?;
    Ok(events)
}

/// A model call's columns after its run and `seq`, as [`append_at_once`] reads them.
fn call_values_of(call: &NewModelCall) -> serde_json::Value {
    let u = call.usage;
    serde_json::json!([
        call.app.to_string(),
        call.user.0,
        call.model,
        usage_columns::column(call.step),
        usage_columns::column(u.input_tokens),
        usage_columns::column(u.output_tokens),
        usage_columns::column(u.cache_read_tokens),
        usage_columns::column(u.cache_write_tokens),
        usage_columns::column(u.reasoning_tokens),
        usage_columns::column(call.cost_micro_usd),
        i64::from(call.estimated),
        usage_columns::column(call.ms),
        call.at.as_micros(),
    ])
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
    writer: &Writer,
    run: RunId,
    timing: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    sqlx::query("UPDATE runs SET timing_metrics_ms = $2 WHERE id = $1")
        .bind(run.to_string())
        .bind(sql::to_json(timing)?)
        .execute(&mut *writer.acquire().await?)
        .await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The landing's statement writes an ending's usage byte for byte as Rust would.
    #[test]
    fn the_usage_expression_writes_what_serde_writes() {
        let totals = UsageTotals {
            input_tokens: 1,
            output_tokens: 22,
            cache_read_tokens: 333,
            cache_write_tokens: 4444,
            reasoning_tokens: 55555,
            cost_micro_usd: 666666,
            model_calls: 7777777,
            estimated_calls: 0,
        };
        let (marks, expression) = usage_sql("claim").unwrap();
        assert_eq!(marks, serde_json::to_string(&usage_marks()).unwrap());
        // The expression with each column's value in its place, as PostgreSQL evaluates it.
        let mut evaluated = expression;
        let values = [1, 22, 333, 4444, 55555, 666666, 7777777, 0];
        for (column, value) in usage_columns::RUN_COLUMNS.split(", ").zip(values) {
            let concatenated = format!("' || claim.{column} || '");
            assert!(evaluated.contains(&concatenated), "{column} is written");
            evaluated = evaluated.replace(&concatenated, &value.to_string());
        }
        let expected = serde_json::to_string(&totals).unwrap();
        assert_eq!(evaluated, format!("'{expected}'"));
    }
}
