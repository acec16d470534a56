//! Starting a run: the run row, its chat session (new or continued), the user's message,
//! `run.accepted` and the `pre_run` checkpoint with its event, in one transaction under the
//! app row's lock. The database's one-active-run-per-app index refuses a second. On
//! PostgreSQL the transaction is one call of the stored function `start_run` (migration
//! `0018_start_run`): one round trip instead of ten.

use draftsmith_core::api::{
    ChatRole, CheckpointKind, MessageAttachment, MessageStatus, Run, UsageTotals, stream_url,
};
use draftsmith_core::{
    AppEventBody, AppId, ChatSessionId, EngineKind, EventBody, InstanceId, RunEvent, RunId,
    RunStatus, Timestamp, UserId,
};

use serde::Deserialize;
use sqlx::{AnyPool, Row};

use crate::app_log;
use crate::chat;
use crate::checkpoint_log;
use crate::db::{Backend, SqlStore};
use crate::draft_writes;
use crate::error::{Result, StoreError};
use crate::run_log;
use crate::run_rows;
use crate::sql::{self, Tx};

/// What a new run needs.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The app.
    pub app: AppId,
    /// Who starts it.
    pub user: UserId,
    /// Continue this session; a new one when `None`.
    pub chat_session: Option<ChatSessionId>,
    /// The id the new session gets when `chat_session` is `None` (a chat made ahead, whose
    /// sandbox is ready); a fresh one when `None`.
    pub new_chat_id: Option<ChatSessionId>,
    /// Engine.
    pub engine: EngineKind,
    /// What was asked for.
    pub requested_model_id: String,
    /// What it is pinned to.
    pub resolved_model_id: String,
    /// The prompt.
    pub input: String,
    /// The instance that will execute it.
    pub owner: InstanceId,
    /// Its first lease.
    pub lease_until: Timestamp,
    /// What the run is given besides the prompt (`context.selected_agent_contract`, …).
    pub input_params: serde_json::Value,
    /// Files attached to the prompt, recorded on the user's message.
    pub attachments: Vec<MessageAttachment>,
}

/// The session the run continues (checked to be the user's on the app), or a new one.
async fn session_for(tx: &mut Tx, new: &NewRun, now: Timestamp) -> Result<ChatSessionId> {
    match new.chat_session {
        Some(session) => {
            if !chat::session_belongs(tx, session, new.app, &new.user).await? {
                return Err(StoreError::NotFound("chat session"));
            }
            Ok(session)
        }
        None => {
            let session = new.new_chat_id.unwrap_or_default();
            chat::insert_session(tx, session, new, now).await?;
            Ok(session)
        }
    }
}

/// The events a run starts with (`run.accepted`, `checkpoint.created`): the run row is
/// inserted with their `seq`s already taken.
const FIRST_EVENTS: i64 = 2;

/// Inserts the run row as `queued`, its first events' `seq`s taken; false when the app
/// already has an active run.
async fn insert_run(
    tx: &mut Tx,
    id: RunId,
    new: &NewRun,
    session: ChatSessionId,
    base: i64,
    now: Timestamp,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO runs (id, app_id, chat_session_id, created_by, status, engine, \
         requested_model_id, resolved_model_id, input, base_revision, owner_instance, \
         lease_expires_at, timing_metrics_ms, next_seq, created_at, input_params) \
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11, '{}', $12, $13, $14)",
    )
    .bind(id.to_string())
    .bind(new.app.to_string())
    .bind(session.to_string())
    .bind(&new.user.0)
    .bind(new.engine.as_str())
    .bind(&new.requested_model_id)
    .bind(&new.resolved_model_id)
    .bind(&new.input)
    .bind(base)
    .bind(new.owner.to_string())
    .bind(new.lease_until.as_micros())
    .bind(FIRST_EVENTS)
    .bind(now.as_micros())
    .bind(new.input_params.to_string())
    .execute(&mut **tx)
    .await;
    match inserted {
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(false),
        other => other.map(|_| true).map_err(Into::into),
    }
}

/// Persists a run, its user message, `run.accepted` and its `pre_run` checkpoint.
pub(crate) async fn create_run(store: &SqlStore, new: NewRun) -> Result<Run> {
    if store.backend == Backend::Postgres {
        return start_on(store, new).await;
    }
    let mut tx = sql::begin_write(&store.writer).await?;
    // Locking the app row orders run creation against restores of the same app.
    let base = draft_writes::lock_app(&mut tx, new.app).await?;
    let Some(run) = start_in_tx(&mut tx, &new, base).await? else {
        drop(tx);
        let active = run_rows::active(&store.pool, new.app).await?;
        return Err(StoreError::RunActive { run_id: active });
    };
    tx.commit().await?;
    Ok(run)
}

/// Inside a transaction that holds the app row's lock (the draft at `base`): the run, its
/// user message, `run.accepted`, the `pre_run` checkpoint and its event. `None` when the
/// app already has an active run; the transaction must then be dropped.
pub(crate) async fn start_in_tx(tx: &mut Tx, new: &NewRun, base: i64) -> Result<Option<Run>> {
    let now = Timestamp::now();
    let run_id = RunId::new();
    let session = session_for(tx, new, now).await?;
    if !insert_run(tx, run_id, new, session, base, now).await? {
        return Ok(None);
    }
    let (role, complete) = (ChatRole::User, MessageStatus::Complete);
    let message = chat::new_message(session, Some(run_id), role, &new.input, complete, now);
    chat::insert_message(tx, &message).await?;
    chat::set_attachments(tx, &message.id, &new.attachments).await?;
    let pre_run = checkpoint_log::of_run(new.app, run_id, CheckpointKind::PreRun, base, &new.user);
    let pre_run = checkpoint_log::insert(tx, &pre_run).await?;
    let first = first_events(new, run_id, session, &pre_run.id, base, now);
    run_log::insert_events(tx, &first).await?;
    app_log::append_in_tx(tx, new.app, announced(new, run_id, session)).await?;
    Ok(Some(queued(new, run_id, session, base, now)))
}

/// The events a run starts with: `run.accepted`, then the `pre_run` checkpoint's
/// `checkpoint.created` at `base`. Neither moves the status of a run just inserted
/// `queued`: they are written as claimed.
fn first_events(
    new: &NewRun,
    run_id: RunId,
    session: ChatSessionId,
    pre_run: &str,
    base: i64,
    now: Timestamp,
) -> Vec<RunEvent> {
    let accepted = EventBody::RunAccepted {
        engine: new.engine,
        requested_model_id: new.requested_model_id.clone(),
        resolved_model_id: new.resolved_model_id.clone(),
        chat_session_id: session,
    };
    let created = EventBody::CheckpointCreated {
        checkpoint_id: pre_run.to_owned(),
        kind: CheckpointKind::PreRun,
        revision: base,
    };
    [accepted, created]
        .into_iter()
        .zip(1..=FIRST_EVENTS)
        .map(|(body, seq)| RunEvent {
            stage: body.stage(),
            body,
            run_id,
            app_id: new.app,
            seq,
            ts: now,
            diagnostics: Vec::new(),
        })
        .collect()
}

/// The app event announcing the run.
fn announced(new: &NewRun, run_id: RunId, session: ChatSessionId) -> AppEventBody {
    AppEventBody::RunAccepted {
        run_id,
        chat_session_id: session,
        input: new.input.clone(),
        created_by: new.user.clone(),
    }
}

/// The run as just written, not read back.
fn queued(new: &NewRun, run_id: RunId, session: ChatSessionId, base: i64, now: Timestamp) -> Run {
    Run {
        run_id,
        app_id: new.app,
        status: RunStatus::Queued,
        engine: new.engine,
        requested_model_id: new.requested_model_id.clone(),
        resolved_model_id: new.resolved_model_id.clone(),
        chat_session_id: session,
        stream_url: stream_url(new.app, run_id),
        input: new.input.clone(),
        created_by: new.user.clone(),
        base_revision: base,
        result_revision: None,
        summary: None,
        error: None,
        cancel_requested_by: None,
        timing_metrics_ms: serde_json::Map::new(),
        last_seq: FIRST_EVENTS,
        created_at: now,
        started_at: None,
        ended_at: None,
        input_params: new.input_params.clone(),
        usage: UsageTotals::default(),
    }
}

/// What `start_run` answers: the starting revision, or none when the chat session is not
/// the user's on the app.
#[derive(Deserialize)]
struct Started {
    revision: Option<i64>,
}

/// Stands where the starting revision goes in `checkpoint.created` until `start_run`
/// fills it in: no other field of that event can hold it (ids, a kind, a time).
const REVISION_MARK: i64 = i64::MIN;

/// On PostgreSQL, in one call of `start_run` (its own transaction): as
/// [`create_run`]'s transaction.
async fn start_on(store: &SqlStore, new: NewRun) -> Result<Run> {
    let pool: &AnyPool = &store.writer;
    let now = Timestamp::now();
    let run_id = RunId::new();
    let (session, chat_is_new) = match new.chat_session {
        Some(session) => (session, false),
        None => (new.new_chat_id.unwrap_or_default(), true),
    };
    let message = uuid::Uuid::new_v4().to_string();
    let kind = CheckpointKind::PreRun;
    let pre_run = checkpoint_log::prepare(&checkpoint_log::of_run(
        new.app,
        run_id,
        kind,
        REVISION_MARK,
        &new.user,
    ));
    let [accepted, created] = first_events(&new, run_id, session, &pre_run.id, REVISION_MARK, now)
        .try_into()
        .map_err(|_| StoreError::Corrupt("a run starts with two events".into()))?;
    let announced = app_log::claimed(new.app, 0, announced(&new, run_id, session));
    let attachments = if new.attachments.is_empty() {
        None
    } else {
        Some(sql::to_json(&new.attachments)?)
    };
    let answer = sqlx::query(
        "SELECT start_run($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29) AS answer",
    )
    .bind(new.app.to_string())
    .bind(run_id.to_string())
    .bind(session.to_string())
    .bind(chat_is_new)
    .bind(chat::session_title(&new.input))
    .bind(&new.user.0)
    .bind(new.engine.as_str())
    .bind(&new.requested_model_id)
    .bind(&new.resolved_model_id)
    .bind(&new.input)
    .bind(new.owner.to_string())
    .bind(new.lease_until.as_micros())
    .bind(now.as_micros())
    .bind(new.input_params.to_string())
    .bind(FIRST_EVENTS)
    .bind(&message)
    .bind(sql::wire_name(&ChatRole::User)?)
    .bind(sql::wire_name(&MessageStatus::Complete)?)
    .bind(attachments)
    .bind(&pre_run.id)
    .bind(kind.as_str())
    .bind(&pre_run.label)
    .bind(accepted.body.event_type())
    .bind(sql::to_json(&accepted)?)
    .bind(created.body.event_type())
    .bind(sql::to_json(&created)?)
    .bind(REVISION_MARK.to_string())
    .bind(sql::to_json(&announced)?)
    .bind(announced.ts.as_micros())
    .fetch_one(pool)
    .await;
    let answer: Option<String> = match answer {
        Ok(row) => row.try_get("answer")?,
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            let active = run_rows::active(&store.pool, new.app).await?;
            return Err(StoreError::RunActive { run_id: active });
        }
        Err(err) => return Err(err.into()),
    };
    let answer = answer.ok_or(StoreError::NotFound("app"))?;
    let started: Started = serde_json::from_str(&answer)
        .map_err(|e| StoreError::Corrupt(format!("start_run answered {answer:?}: {e}")))?;
    let base = started
        .revision
        .ok_or(StoreError::NotFound("chat session"))?;
    Ok(queued(&new, run_id, session, base, now))
}
