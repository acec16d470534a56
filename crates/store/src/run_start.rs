//! Starting a run: the run row, its chat session (new or continued), the user's message,
//! `run.accepted` and the `pre_run` checkpoint with its event, in one transaction under the
//! app row's lock. The database's one-active-run-per-app index refuses a second. On
//! PostgreSQL the writes are one call of the stored function `start_run` (migration
//! `0018_start_run`): one round trip instead of ten. On SQLite they are one script
//! ([`START_SQLITE`]) reading the same parameters: one call of the writer's thread.

use draftsmith_core::api::{
    ChatRole, Checkpoint, CheckpointKind, MessageAttachment, MessageStatus, Run, UsageTotals,
    stream_url,
};
use draftsmith_core::{
    AppEvent, AppEventBody, AppId, ChatSessionId, EngineKind, EventBody, InstanceId, RunEvent,
    RunId, RunStatus, Timestamp, UserId,
};

use serde::Deserialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::app_log;
use crate::chat;
use crate::checkpoint_log::{self, NewCheckpoint};
use crate::db::{Backend, SqlStore};
use crate::draft_writes;
use crate::error::{Result, StoreError};
use crate::run_rows;
use crate::sql::{self, Tx};
use crate::writer;

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
    /// The app's draft revision as the caller last read it: while it is still the
    /// draft's, SQLite writes the run in one call of the writer's thread.
    pub seen_revision: Option<i64>,
}

/// The events a run starts with (`run.accepted`, `checkpoint.created`): the run row is
/// inserted with their `seq`s already taken.
const FIRST_EVENTS: i64 = 2;

/// Persists a run, its user message, `run.accepted` and its `pre_run` checkpoint.
pub(crate) async fn create_run(store: &SqlStore, new: NewRun) -> Result<Run> {
    let start = Start::of(&new)?;
    if store.backend == Backend::Postgres {
        // One call of `start_run`, its own transaction.
        let answer = start
            .call(&new)?
            .fetch_one(&mut *store.writer.acquire().await?)
            .await;
        return match start.answered(&new, answer)? {
            Some(run) => Ok(run),
            None => Err(active(store, new.app).await),
        };
    }
    if let Some(seen) = new.seen_revision {
        match start.write_sqlite_at_once(store, &new, seen).await {
            Ok(run) => return Ok(run),
            // The draft moved on, the app has an active run, the chat session is not the
            // user's, or a statement failed: written step by step, the run tells which.
            Err(error) => tracing::debug!(%error, "a run is started step by step"),
        }
    }
    let mut tx = store.writer.begin().await?;
    // Locking the app row orders run creation against restores of the same app.
    let base = draft_writes::lock_app(&mut tx, new.app).await?;
    let Some(run) = start.write_sqlite(&mut tx, &new, base).await? else {
        drop(tx);
        return Err(active(store, new.app).await);
    };
    tx.commit().await?;
    Ok(run)
}

/// Inside a transaction that holds the app row's lock (the draft at `base`): the run, its
/// user message, `run.accepted`, the `pre_run` checkpoint and its event. `None` when the
/// app already has an active run; the transaction must then be dropped.
pub(crate) async fn start_in_tx(tx: &mut Tx, new: &NewRun, base: i64) -> Result<Option<Run>> {
    let start = Start::of(new)?;
    if tx.backend_name() == "PostgreSQL" {
        let answer = start.call(new)?.fetch_one(&mut **tx).await;
        return start.answered(new, answer);
    }
    start.write_sqlite(tx, new, base).await
}

/// The answer to a second active run: the active run's id, or why it could not be read.
async fn active(store: &SqlStore, app: AppId) -> StoreError {
    match run_rows::active(&store.pool, app).await {
        Ok(active) => StoreError::RunActive { run_id: active },
        Err(err) => err,
    }
}

/// A run about to be started: what Rust makes of it before the database writes it, the
/// same for both databases. The starting revision is not known yet: it stands as
/// [`REVISION_MARK`] in `checkpoint.created`, and the app event's `seq` as its mark.
struct Start {
    run_id: RunId,
    session: ChatSessionId,
    chat_is_new: bool,
    now: Timestamp,
    message: String,
    pre_run: (NewCheckpoint, Checkpoint),
    accepted: RunEvent,
    created: RunEvent,
    announced: AppEvent,
    attachments: Option<String>,
}

impl Start {
    fn of(new: &NewRun) -> Result<Self> {
        let now = Timestamp::now();
        let run_id = RunId::new();
        let (session, chat_is_new) = match new.chat_session {
            Some(session) => (session, false),
            None => (new.new_chat_id.unwrap_or_default(), true),
        };
        let kind = CheckpointKind::PreRun;
        let pre_run = checkpoint_log::of_run(new.app, run_id, kind, REVISION_MARK, &new.user);
        let prepared = checkpoint_log::prepare(&pre_run);
        let [accepted, created] =
            first_events(new, run_id, session, &prepared.id, REVISION_MARK, now)
                .try_into()
                .map_err(|_| StoreError::Corrupt("a run starts with two events".into()))?;
        let attachments = if new.attachments.is_empty() {
            None
        } else {
            Some(sql::to_json(&new.attachments)?)
        };
        Ok(Self {
            run_id,
            session,
            chat_is_new,
            now,
            message: uuid::Uuid::new_v4().to_string(),
            pre_run: (pre_run, prepared),
            accepted,
            created,
            announced: app_log::unclaimed(new.app, announced(new, run_id, session)),
            attachments,
        })
    }

    /// Binds the 29 parameters of `start_run` (migration `0018_start_run`) in its order,
    /// which [`START_SQLITE`] reads by the same numbers.
    fn bind<'q>(&self, query: sql::Query<'q>, new: &NewRun) -> Result<sql::Query<'q>> {
        let (pre_run, prepared) = &self.pre_run;
        Ok(query
            .bind(new.app.to_string())
            .bind(self.run_id.to_string())
            .bind(self.session.to_string())
            .bind(self.chat_is_new)
            .bind(chat::session_title(&new.input))
            .bind(new.user.0.clone())
            .bind(new.engine.as_str())
            .bind(new.requested_model_id.clone())
            .bind(new.resolved_model_id.clone())
            .bind(new.input.clone())
            .bind(new.owner.to_string())
            .bind(new.lease_until.as_micros())
            .bind(self.now.as_micros())
            .bind(new.input_params.to_string())
            .bind(FIRST_EVENTS)
            .bind(self.message.clone())
            .bind(sql::wire_name(&ChatRole::User)?)
            .bind(sql::wire_name(&MessageStatus::Complete)?)
            .bind(self.attachments.clone())
            .bind(prepared.id.clone())
            .bind(pre_run.kind.as_str())
            .bind(pre_run.label.clone())
            .bind(self.accepted.body.event_type())
            .bind(sql::to_json(&self.accepted)?)
            .bind(self.created.body.event_type())
            .bind(sql::to_json(&self.created)?)
            .bind(REVISION_MARK.to_string())
            .bind(sql::to_json(&self.announced)?)
            .bind(self.announced.ts.as_micros()))
    }

    /// On PostgreSQL, the call of `start_run`.
    fn call(&self, new: &NewRun) -> Result<sql::Query<'static>> {
        self.bind(
            sqlx::query(
                "SELECT start_run($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                 $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29) \
                 AS answer",
            ),
            new,
        )
    }

    /// The run `start_run` answered for, `None` when the app has an active run.
    fn answered(
        &self,
        new: &NewRun,
        answer: std::result::Result<AnyRow, sqlx::Error>,
    ) -> Result<Option<Run>> {
        let answer: Option<String> = match answer {
            Ok(row) => row.try_get("answer")?,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let answer = answer.ok_or(StoreError::NotFound("app"))?;
        let started: Started = serde_json::from_str(&answer)
            .map_err(|e| StoreError::Corrupt(format!("start_run answered {answer:?}: {e}")))?;
        let base = started
            .revision
            .ok_or(StoreError::NotFound("chat session"))?;
        Ok(Some(self.run(new, base)))
    }

    /// On SQLite, in `tx` (holding the app row's lock, the draft at `base`): a continued
    /// session checked, then every row in one script, one call of the writer's thread
    /// where a statement each took ten.
    async fn write_sqlite(&self, tx: &mut Tx, new: &NewRun, base: i64) -> Result<Option<Run>> {
        if !self.chat_is_new && !chat::session_belongs(tx, self.session, new.app, &new.user).await?
        {
            return Err(StoreError::NotFound("chat session"));
        }
        let script = start_script();
        let query = self.bind_script(&script, new, base)?;
        match query.execute(&mut **tx).await {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Ok(None),
            other => other?,
        };
        Ok(Some(self.run(new, base)))
    }

    /// On SQLite, the run started on the draft at `seen` in one script framed by its
    /// transaction, where step by step it took four calls of the writer's thread: its
    /// first statement ([`writer::only_while`], [`SESSION_SQLITE`]) checks under the
    /// write lock that the draft is still at `seen` and a continued chat session is the
    /// user's on the app, and otherwise fails, so the script writes nothing; a second
    /// active run fails the script as it fails the step-by-step writes.
    async fn write_sqlite_at_once(&self, store: &SqlStore, new: &NewRun, seen: i64) -> Result<Run> {
        let check = writer::only_while("$1", "$30", SESSION_SQLITE);
        let script = writer::framed(&format!("{check}; {}", start_script()));
        let query = self.bind_script(&script, new, seen)?;
        store.writer.fetch_all_at_once(query).await?;
        Ok(self.run(new, seen))
    }

    /// [`start_script`]'s parameters (after any statement before it reading the same
    /// ones), for the draft at `base`.
    fn bind_script<'q>(&self, script: &'q str, new: &NewRun, base: i64) -> Result<sql::Query<'q>> {
        let (pre_run, prepared) = &self.pre_run;
        let query = self
            .bind(sqlx::query(script), new)?
            .bind(base)
            .bind(app_log::seq_mark());
        let pre_run = NewCheckpoint {
            revision: base,
            ..pre_run.clone()
        };
        Ok(checkpoint_log::bind_row(query, &pre_run, prepared))
    }

    /// The run as just written (at `base`), not read back.
    fn run(&self, new: &NewRun, base: i64) -> Run {
        queued(new, self.run_id, self.session, base, self.now)
    }
}

/// On SQLite, what `start_run` writes after its checks ([`START_SQLITE`]), then the
/// `pre_run` checkpoint's row.
fn start_script() -> String {
    format!(
        "{START_SQLITE}; {}",
        checkpoint_log::insert_row_sql(sql::Marks::Numbered, PRE_RUN_MARKS)
    )
}

/// Where the `pre_run` checkpoint's row ([`checkpoint_log::insert_row_sql`]) takes its
/// parameters in [`Start::write_sqlite`]'s script: after `start_run`'s 29, the base and
/// the app event's seq mark.
const PRE_RUN_MARKS: usize = 32;

/// [`Start::write_sqlite_at_once`]'s check, by [`START_SQLITE`]'s numbers (`$30` the
/// revision seen, [`writer::only_while`]): a continued session must be the user's on
/// the app.
const SESSION_SQLITE: &str = "$4 OR EXISTS (SELECT 1 FROM published_app_coding_chat_sessions \
    WHERE id = $3 AND app_id = $1 AND user_id = $6)";

/// [`Start::write_sqlite`]'s script before the `pre_run` checkpoint's row: what
/// `start_run` writes after its checks, its parameters by the same numbers, then `$30` the
/// base revision and `$31` the app event's seq mark.
const START_SQLITE: &str = "\
    INSERT INTO published_app_coding_chat_sessions \
      (id, app_id, user_id, title, created_at, updated_at) \
      SELECT $3, $1, $6, $5, $13, $13 WHERE $4; \
    INSERT INTO runs (id, app_id, chat_session_id, created_by, status, engine, \
      requested_model_id, resolved_model_id, input, base_revision, owner_instance, \
      lease_expires_at, timing_metrics_ms, next_seq, created_at, input_params) \
      VALUES ($2, $1, $3, $6, 'queued', $7, $8, $9, $10, $30, $11, $12, '{}', $15, $13, $14); \
    INSERT INTO published_app_coding_chat_messages \
      (id, session_id, run_id, role, content, status, created_at, attachments) \
      VALUES ($16, $3, $2, $17, $10, $18, $13, $19); \
    UPDATE published_app_coding_chat_sessions SET updated_at = $13 WHERE id = $3; \
    INSERT INTO run_events (run_id, seq, event_type, body, created_at) \
      VALUES ($2, $15 - 1, $23, $24, $13), ($2, $15, $25, replace($26, $27, $30), $13); \
    UPDATE apps SET next_event_seq = next_event_seq + 1 WHERE id = $1; \
    INSERT INTO app_events (app_id, seq, event_type, body, created_at) \
      SELECT $1, next_event_seq, $28 ->> '$.event', \
        replace($28, $31, '\"seq\":' || next_event_seq), $29 \
      FROM apps WHERE id = $1";

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
