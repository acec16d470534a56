//! A run's result landing on the draft in one transaction: the draft revision, its
//! `draft.synced` event, the `post_run` checkpoint and its event, the assistant's message,
//! the timings and the terminal event commit together or not at all, so a crash at any
//! moment leaves records that describe the draft.

use draftsmith_core::api::{ChatMessage, ChatRole, Checkpoint, CheckpointKind, MessageStatus};
use draftsmith_core::{
    AppEventBody, AppId, ChatSessionId, EventBody, RunEvent, RunId, Timestamp, UserId,
};

use crate::app_log;
use crate::chat;
use crate::checkpoint_log::{self, NewCheckpoint};
use crate::db::{Backend, SqlStore};
use crate::draft_writes::{self, Wanted};
use crate::drafts::{DraftWrite, FileChange};
use crate::error::{Result, StoreError};
use crate::run_log::{self, Batch};
use crate::sql::{self, Tx};
use crate::usage;

/// Everything a run's successful ending writes.
#[derive(Debug, Clone)]
pub struct Landing {
    /// The app.
    pub app: AppId,
    /// The run.
    pub run: RunId,
    /// The draft revision the changes were checked against: a draft that moved on since
    /// fails the landing with [`crate::StoreError::RevisionConflict`] and nothing is written.
    pub expected: i64,
    /// The workspace's changes; none leaves the draft as it is (no `draft.synced`).
    pub changes: Vec<FileChange>,
    /// Who the revision and the checkpoint are attributed to.
    pub author: UserId,
    /// The assistant's message to the run's chat session, when it said something.
    pub message: Option<(ChatSessionId, String, MessageStatus)>,
    /// The run's phase timings.
    pub timing: serde_json::Map<String, serde_json::Value>,
    /// The terminal event (`run.completed` or `run.paused`); a `run.completed` gets the
    /// revision that landed.
    pub ending: EventBody,
}

/// What a landing wrote.
#[derive(Debug, Clone)]
pub struct Landed {
    /// The draft write, when there were changes.
    pub write: Option<DraftWrite>,
    /// The events appended, in order, for publishing.
    pub events: Vec<RunEvent>,
}

/// Lands `landing` (see [`crate::RunStore::land_run`]).
pub(crate) async fn land(store: &SqlStore, mut landing: Landing) -> Result<Landed> {
    let has_changes = !landing.changes.is_empty();
    let changes = std::mem::take(&mut landing.changes);
    let wanted = draft_writes::store_changes(&store.blobs, changes).await?;
    let (app, run, author) = (landing.app, landing.run, &landing.author);
    let mut tx = store.writer.begin().await?;
    // `draft.synced` (with changes) and `checkpoint.created` go out before the ending, all
    // three under one claim of seqs that also records the timings.
    let mut progress = Vec::new();
    let (revision, write) = if has_changes {
        let expected = Some(landing.expected);
        let write = draft_writes::write_in_tx(&mut tx, app, expected, &wanted, author).await?;
        let synced = EventBody::draft_synced(write.revision, write.changes.clone());
        progress.push((synced, Vec::new()));
        (write.revision, Some(write))
    } else {
        let same = draft_writes::write_in_tx(&mut tx, app, None, &Wanted::new(), author).await?;
        (same.revision, None)
    };
    let post_run = checkpoint_log::of_run(app, run, CheckpointKind::PostRun, revision, author);
    let checkpoint = checkpoint_log::prepare(&post_run);
    let created = EventBody::CheckpointCreated {
        checkpoint_id: checkpoint.id.clone(),
        kind: CheckpointKind::PostRun,
        revision,
    };
    progress.push((created, Vec::new()));
    let message = landing.message.as_ref().map(|(session, text, status)| {
        let (role, now) = (ChatRole::Assistant, Timestamp::now());
        chat::new_message(*session, Some(run), role, text, *status, now)
    });
    let ending = match landing.ending {
        EventBody::RunCompleted { summary, usage, .. } => EventBody::RunCompleted {
            revision,
            summary,
            usage,
        },
        other => other,
    };
    let batch = Batch {
        calls: &[],
        progress,
        last: Some((ending, Vec::new())),
        timing: Some(&landing.timing),
    };
    let records = Records {
        checkpoint: (&post_run, &checkpoint),
        message: message.as_ref(),
    };
    let postgres = store.backend == Backend::Postgres;
    let events = end_with_records(&mut tx, postgres, app, run, records, batch).await?;
    tx.commit().await?;
    if let Some(write) = &write {
        let from = landing.expected;
        store
            .manifests
            .keep_written(app, from, write.revision, &wanted);
    }
    Ok(Landed { write, events })
}

/// What a landing records beside its events: the `post_run` checkpoint (as asked for and
/// as prepared) and the assistant's message.
struct Records<'a> {
    checkpoint: (&'a NewCheckpoint, &'a Checkpoint),
    message: Option<&'a ChatMessage>,
}

/// In the landing's transaction (the app row locked by its draft write), the checkpoint,
/// the message and its session's time, the app event's `seq`, the claim of the run's
/// `seq`s that ends it, its events (the ending's usage filled in from the claim's totals,
/// [`run_log::events_cte`]) and the app's `run.ended` (its `seq` filled in likewise). On
/// PostgreSQL one statement: one round trip, where writing the events and the app's event
/// after the claim took three; the app row is already this transaction's, so the only lock
/// the statement takes is the run's, as the claim always did. On SQLite the same writes as
/// one script, one call of the writer's thread where a statement each took eight. A
/// landing records no model calls (the run's sink wrote them all before).
async fn end_with_records(
    tx: &mut Tx,
    postgres: bool,
    app: AppId,
    run: RunId,
    records: Records<'_>,
    batch: Batch<'_>,
) -> Result<Vec<RunEvent>> {
    debug_assert!(batch.calls.is_empty());
    let now = Timestamp::now();
    let last = batch.last.as_ref().map(|(body, _)| body);
    let status = last
        .and_then(EventBody::terminal_status)
        .ok_or_else(|| StoreError::Corrupt("a landing without its ending".into()))?;
    // The events' texts, the app event's type, text and time follow the message's seven
    // parameters, if any; `$19`, the checkpoint's app, is the app.
    let texts = if records.message.is_some() {
        27 + 7
    } else {
        27
    };
    // The app's `run.ended` at the claimed `seq`, its text's mark filled in: from the
    // `app` CTE on PostgreSQL, from the app's row on SQLite.
    let run_ended = |seq: &str, from: &str| {
        format!(
            "INSERT INTO app_events (app_id, seq, event_type, body, created_at) \
             SELECT $19, {seq}, ${}, replace(${}, '{}', '\"seq\":' || {seq}), ${} {from}",
            texts + 1,
            texts + 2,
            app_log::seq_mark(),
            texts + 3
        )
    };
    let statement = if postgres {
        let message = match records.message {
            Some(_) => format!("{}, ", chat::message_ctes(27)),
            None => String::new(),
        };
        format!(
            "WITH checkpoint AS ({}), {message}\
             app AS (UPDATE apps SET next_event_seq = next_event_seq + 1 WHERE id = $19 \
               RETURNING next_event_seq AS app_event_seq), \
             claim AS ({}), {}, ended AS ({}) \
             SELECT claim.*, app.app_event_seq FROM claim, app",
            checkpoint_log::insert_row_sql(sql::Marks::Numbered, 18),
            run_log::claim_sql(last, true),
            run_log::events_cte(texts, true)?,
            run_ended("app.app_event_seq", "FROM app, claim"),
        )
    } else {
        let message = match records.message {
            Some(_) => format!("{}; ", chat::message_statements(27).join("; ")),
            None => String::new(),
        };
        format!(
            "{}; {message}\
             UPDATE apps SET next_event_seq = next_event_seq + 1 WHERE id = $19; \
             {}; {}; {}",
            checkpoint_log::insert_row_sql(sql::Marks::Numbered, 18),
            run_log::claim_sql(last, false),
            run_log::events_after_claim(texts, true)?,
            run_ended("next_event_seq", "FROM apps WHERE id = $19"),
        )
    };
    let count = run_log::batch_len(&batch)?;
    let added = usage::added_by(batch.calls);
    let query = run_log::bind_claim(sqlx::query(&statement), run, count, now, &batch, added)?;
    let (new, checkpoint) = records.checkpoint;
    let mut query = checkpoint_log::bind_row(query, new, checkpoint);
    if let Some(message) = records.message {
        query = chat::bind_message(query, message)?;
    }
    let mut events = run_log::unclaimed(run, batch, now);
    let ended = app_log::unclaimed(
        app,
        AppEventBody::RunEnded {
            run_id: run,
            status,
        },
    );
    let claimed = query
        .bind(sql::to_json(&run_log::claim_texts(&events)?)?)
        .bind(ended.body.event_type())
        .bind(sql::to_json(&ended)?)
        .bind(ended.ts.as_micros())
        // All of a SQLite script's rows: asked for one, it would stop after the claim's.
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .next()
        .ok_or(StoreError::RunEnded)?;
    run_log::claimed_as(&mut events, &claimed)?;
    Ok(events)
}
