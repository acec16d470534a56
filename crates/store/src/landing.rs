//! A run's result landing on the draft in one transaction: the draft revision, its
//! `draft.synced` event, the `post_run` checkpoint and its event, the assistant's message,
//! the timings and the terminal event commit together or not at all, so a crash at any
//! moment leaves records that describe the draft.

use draftsmith_core::api::{ChatMessage, ChatRole, Checkpoint, CheckpointKind, MessageStatus};
use draftsmith_core::{
    AppEventBody, AppId, ChatSessionId, Diagnostic, EventBody, RunEvent, RunId, Timestamp, UserId,
};

use crate::app_log;
use crate::chat;
use crate::checkpoint_log::{self, NewCheckpoint};
use crate::db::{Backend, SqlStore};
use crate::draft_writes::{self, Wanted};
use crate::drafts::{DraftWrite, FileChange};
use crate::error::{Result, StoreError};
use crate::run_log::{self, Batch};
use crate::sql;
use crate::usage;
use crate::{rules, writer};

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
    if !has_changes && store.backend == Backend::Sqlite {
        match land_unchanged_at_once(store, &landing).await {
            Ok(events) => {
                return Ok(Landed {
                    write: None,
                    events,
                });
            }
            // The draft moved on, the run ended or a statement failed: the landing is
            // written step by step, which tells which.
            Err(error) => tracing::debug!(%error, "a landing is written step by step"),
        }
    }
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
    let closing = Closing::at(&landing, revision);
    let batch = closing.batch(&landing, progress);
    let postgres = store.backend == Backend::Postgres;
    let statement = end_statement(postgres, &closing, &batch)?;
    let (query, mut events) = bind_end(sqlx::query(&statement), app, run, &closing, batch)?;
    // All of a SQLite script's rows: asked for one, it would stop after the claim's.
    let claimed = query.fetch_all(&mut *tx).await?.into_iter().next();
    run_log::claimed_as(&mut events, &claimed.ok_or(StoreError::RunEnded)?)?;
    tx.commit().await?;
    if let Some(write) = &write {
        let from = landing.expected;
        store
            .manifests
            .keep_written(app, from, write.revision, &wanted);
    }
    Ok(Landed { write, events })
}

/// On SQLite, a landing without changes on the draft it expects, in one call of the
/// writer's thread (a script framed by its transaction) where it took four: the draft's
/// revision is the one expected, which the script's first statement checks under the
/// file's write lock, with the run still active. Either differing fails that statement
/// (the draft's revision set to `NULL` is refused), so the script writes nothing and the
/// caller lands step by step.
async fn land_unchanged_at_once(store: &SqlStore, landing: &Landing) -> Result<Vec<RunEvent>> {
    let closing = Closing::at(landing, landing.expected);
    let batch = closing.batch(landing, Vec::new());
    let accepted = batch
        .last
        .as_ref()
        .map(|(body, _)| rules::sql_list(&rules::accepted_from(body)))
        .ok_or_else(|| StoreError::Corrupt("a landing without its ending".into()))?;
    // `$1` is the run, `$19` the checkpoint's app and `$21` its revision.
    let active = format!("EXISTS (SELECT 1 FROM runs WHERE id = $1 AND status IN ({accepted}))");
    let check = writer::only_while("$19", "$21", &active);
    let statement = writer::framed(&format!(
        "{check}; {}",
        end_statement(false, &closing, &batch)?
    ));
    let (query, mut events) = bind_end(
        sqlx::query(&statement),
        landing.app,
        landing.run,
        &closing,
        batch,
    )?;
    let claimed = store.writer.fetch_all_at_once(query).await?.pop();
    run_log::claimed_as(&mut events, &claimed.ok_or(StoreError::RunEnded)?)?;
    Ok(events)
}

/// What a landing records beside its draft write at `revision`: the `post_run`
/// checkpoint (as asked for and as prepared), the assistant's message and the ending.
struct Closing {
    revision: i64,
    post_run: NewCheckpoint,
    checkpoint: Checkpoint,
    message: Option<ChatMessage>,
    ending: EventBody,
}

impl Closing {
    fn at(landing: &Landing, revision: i64) -> Self {
        let (app, run) = (landing.app, landing.run);
        let kind = CheckpointKind::PostRun;
        let post_run = checkpoint_log::of_run(app, run, kind, revision, &landing.author);
        let checkpoint = checkpoint_log::prepare(&post_run);
        let message = landing.message.as_ref().map(|(session, text, status)| {
            let (role, now) = (ChatRole::Assistant, Timestamp::now());
            chat::new_message(*session, Some(run), role, text, *status, now)
        });
        let ending = match &landing.ending {
            EventBody::RunCompleted { summary, usage, .. } => EventBody::RunCompleted {
                revision,
                summary: summary.clone(),
                usage: *usage,
            },
            other => other.clone(),
        };
        Self {
            revision,
            post_run,
            checkpoint,
            message,
            ending,
        }
    }

    /// The events after `progress` (a `draft.synced`, or none): `checkpoint.created`,
    /// then the ending, with the run's timings.
    fn batch<'a>(&self, landing: &'a Landing, mut progress: Vec<Pending>) -> Batch<'a> {
        let created = EventBody::CheckpointCreated {
            checkpoint_id: self.checkpoint.id.clone(),
            kind: CheckpointKind::PostRun,
            revision: self.revision,
        };
        progress.push((created, Vec::new()));
        Batch {
            calls: &[],
            progress,
            last: Some((self.ending.clone(), Vec::new())),
            timing: Some(&landing.timing),
        }
    }
}

/// An event to write and its diagnostics.
type Pending = (EventBody, Vec<Diagnostic>);

/// The statement that ends a landing: in its transaction (the app row locked by its draft
/// write), the checkpoint, the message and its session's time, the app event's `seq`, the
/// claim of the run's `seq`s that ends it, its events (the ending's usage filled in from
/// the claim's totals, [`run_log::events_cte`]) and the app's `run.ended` (its `seq`
/// filled in likewise). On PostgreSQL one statement: one round trip, where writing the
/// events and the app's event after the claim took three; the app row is already this
/// transaction's, so the only lock the statement takes is the run's, as the claim always
/// did. On SQLite the same writes as one script, one call of the writer's thread where a
/// statement each took eight. A landing records no model calls (the run's sink wrote them
/// all before). Its parameters are bound by [`bind_end`].
fn end_statement(postgres: bool, closing: &Closing, batch: &Batch<'_>) -> Result<String> {
    debug_assert!(batch.calls.is_empty());
    let last = batch.last.as_ref().map(|(body, _)| body);
    // The events' texts, the app event's type, text and time follow the message's seven
    // parameters, if any; `$19`, the checkpoint's app, is the app.
    let texts = texts_at(closing);
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
    let has_message = closing.message.is_some();
    Ok(if postgres {
        let message = match has_message {
            true => format!("{}, ", chat::message_ctes(27)),
            false => String::new(),
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
        let message = match has_message {
            true => format!("{}; ", chat::message_statements(27).join("; ")),
            false => String::new(),
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
    })
}

/// Where [`end_statement`]'s events' texts are: after the claim's parameters, the
/// checkpoint's and the message's, if any.
fn texts_at(closing: &Closing) -> usize {
    if closing.message.is_some() {
        27 + 7
    } else {
        27
    }
}

/// Binds [`end_statement`]'s parameters: `batch` ending `run` of `app` with `closing`'s
/// records; the events as they will be once their claim answers.
fn bind_end<'q>(
    query: sql::Query<'q>,
    app: AppId,
    run: RunId,
    closing: &Closing,
    batch: Batch<'_>,
) -> Result<(sql::Query<'q>, Vec<RunEvent>)> {
    let now = Timestamp::now();
    let status = batch
        .last
        .as_ref()
        .and_then(|(body, _)| body.terminal_status())
        .ok_or_else(|| StoreError::Corrupt("a landing without its ending".into()))?;
    let count = run_log::batch_len(&batch)?;
    let added = usage::added_by(batch.calls);
    let query = run_log::bind_claim(query, run, count, now, &batch, added)?;
    let mut query = checkpoint_log::bind_row(query, &closing.post_run, &closing.checkpoint);
    if let Some(message) = &closing.message {
        query = chat::bind_message(query, message)?;
    }
    let events = run_log::unclaimed(run, batch, now);
    let ended = app_log::unclaimed(
        app,
        AppEventBody::RunEnded {
            run_id: run,
            status,
        },
    );
    let query = query
        .bind(sql::to_json(&run_log::claim_texts(&events)?)?)
        .bind(ended.body.event_type())
        .bind(sql::to_json(&ended)?)
        .bind(ended.ts.as_micros());
    Ok((query, events))
}
