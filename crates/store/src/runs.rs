//! Runs and their event logs. Every status change rides on an event append, in one
//! transaction that also claims the event's sequence number, so the log and the status can
//! never disagree and a terminal run accepts no more events.

use draftsmith_core::api::{ChatRole, CheckpointKind, MessageStatus, Run, stream_url};
use draftsmith_core::{
    AppId, ChatSessionId, Diagnostic, EngineKind, EventBody, EventError, InstanceId, RunEvent,
    RunId, RunStatus, Timestamp, UserId,
};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::chat::{insert_message, new_session_title};
use crate::{Result, StoreError};

/// What a new run needs.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The app.
    pub app: AppId,
    /// Who starts it.
    pub user: UserId,
    /// Continue this session; a new one when `None`.
    pub chat_session: Option<ChatSessionId>,
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
}

const RUN_COLUMNS: &str = "id, app_id, chat_session_id, created_by, status, engine, \
    requested_model_id, resolved_model_id, input, base_revision, cancel_requested_by, \
    error_code, error_message, summary, result_revision, timing_metrics_ms, next_seq, \
    created_at, started_at, ended_at, input_params";

fn sql_list(statuses: &[RunStatus]) -> String {
    let quoted: Vec<String> = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    quoted.join(", ")
}

fn active_list() -> String {
    sql_list(&RunStatus::ACTIVE)
}

pub(crate) fn run_from_row(row: &AnyRow) -> Result<Run> {
    let id: String = row.try_get("id")?;
    let app: String = row.try_get("app_id")?;
    let session: String = row.try_get("chat_session_id")?;
    let status: String = row.try_get("status")?;
    let engine: String = row.try_get("engine")?;
    let timing: String = row.try_get("timing_metrics_ms")?;
    let error_code: Option<String> = row.try_get("error_code")?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("run {id}: {what}"));
    let run_id: RunId = id.parse().map_err(|_| corrupt("id"))?;
    let app_id: AppId = app.parse().map_err(|_| corrupt("app_id"))?;
    let error = match error_code {
        Some(code) => Some(EventError {
            code: serde_json::from_value(serde_json::Value::String(code))
                .map_err(|_| corrupt("error_code"))?,
            message: row
                .try_get::<Option<String>, _>("error_message")?
                .unwrap_or_default(),
            field: None,
            details: None,
        }),
        None => None,
    };
    Ok(Run {
        run_id,
        app_id,
        status: RunStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        engine: EngineKind::parse(&engine).ok_or_else(|| corrupt("engine"))?,
        requested_model_id: row.try_get("requested_model_id")?,
        resolved_model_id: row.try_get("resolved_model_id")?,
        chat_session_id: session.parse().map_err(|_| corrupt("chat_session_id"))?,
        stream_url: stream_url(app_id, run_id),
        input: row.try_get("input")?,
        created_by: UserId(row.try_get("created_by")?),
        base_revision: row.try_get("base_revision")?,
        result_revision: row.try_get("result_revision")?,
        summary: row.try_get("summary")?,
        error,
        cancel_requested_by: row.try_get("cancel_requested_by")?,
        timing_metrics_ms: serde_json::from_str(&timing).map_err(|_| corrupt("timing"))?,
        last_seq: row.try_get("next_seq")?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        started_at: row
            .try_get::<Option<i64>, _>("started_at")?
            .map(Timestamp::from_micros),
        ended_at: row
            .try_get::<Option<i64>, _>("ended_at")?
            .map(Timestamp::from_micros),
        input_params: serde_json::from_str(&row.try_get::<String, _>("input_params")?)
            .map_err(|_| corrupt("input_params"))?,
    })
}

pub(crate) async fn create_run(pool: &AnyPool, new: NewRun) -> Result<Run> {
    let now = Timestamp::now();
    let run_id = RunId::new();
    let mut tx = crate::db::begin_write(pool).await?;
    // Locking the app row orders run creation against restores of the same app.
    let base: i64 = sqlx::query(
        "UPDATE apps SET updated_at = updated_at WHERE id = $1 RETURNING draft_revision",
    )
    .bind(new.app.to_string())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound("app"))?
    .try_get("draft_revision")?;
    let session = match new.chat_session {
        Some(session) => {
            let found = sqlx::query(
                "SELECT id FROM published_app_coding_chat_sessions \
                 WHERE id = $1 AND app_id = $2 AND user_id = $3",
            )
            .bind(session.to_string())
            .bind(new.app.to_string())
            .bind(&new.user.0)
            .fetch_optional(&mut *tx)
            .await?;
            found.ok_or(StoreError::NotFound("chat session"))?;
            session
        }
        None => {
            let session = ChatSessionId::new();
            sqlx::query(
                "INSERT INTO published_app_coding_chat_sessions \
                 (id, app_id, user_id, title, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(session.to_string())
            .bind(new.app.to_string())
            .bind(&new.user.0)
            .bind(new_session_title(&new.input))
            .bind(now.as_micros())
            .execute(&mut *tx)
            .await?;
            session
        }
    };
    let inserted = sqlx::query(
        "INSERT INTO runs (id, app_id, chat_session_id, created_by, status, engine, \
         requested_model_id, resolved_model_id, input, base_revision, owner_instance, \
         lease_expires_at, timing_metrics_ms, next_seq, created_at, input_params) \
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $11, '{}', 0, $12, $13)",
    )
    .bind(run_id.to_string())
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
    .bind(now.as_micros())
    .bind(new.input_params.to_string())
    .execute(&mut *tx)
    .await;
    if let Err(sqlx::Error::Database(db)) = &inserted
        && db.is_unique_violation()
    {
        drop(tx);
        let active = active_run(pool, new.app).await?;
        return Err(StoreError::RunActive { run_id: active });
    }
    inserted?;
    insert_message(
        &mut tx,
        session,
        Some(run_id),
        ChatRole::User,
        &new.input,
        MessageStatus::Complete,
        now,
    )
    .await?;
    let accepted = EventBody::RunAccepted {
        engine: new.engine,
        requested_model_id: new.requested_model_id.clone(),
        resolved_model_id: new.resolved_model_id.clone(),
        chat_session_id: session,
    };
    append_in_tx(&mut tx, run_id, accepted, Vec::new(), &RunStatus::ACTIVE).await?;
    let pre_run = crate::checkpoints::insert(
        &mut tx,
        &crate::checkpoints::NewCheckpoint {
            app: new.app,
            kind: CheckpointKind::PreRun,
            revision: base,
            run: Some(run_id),
            label: "before the run".into(),
            by: new.user.clone(),
            detached: None,
        },
    )
    .await?;
    let created = EventBody::CheckpointCreated {
        checkpoint_id: pre_run.id,
        kind: CheckpointKind::PreRun.as_str().into(),
        revision: base,
    };
    append_in_tx(&mut tx, run_id, created, Vec::new(), &RunStatus::ACTIVE).await?;
    let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
        .bind(run_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
    let run = run_from_row(&row)?;
    tx.commit().await?;
    Ok(run)
}

pub(crate) async fn active_run(pool: &AnyPool, app: AppId) -> Result<Option<RunId>> {
    let row = sqlx::query(&format!(
        "SELECT id FROM runs WHERE app_id = $1 AND status IN ({})",
        active_list()
    ))
    .bind(app.to_string())
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => {
            let id: String = row.try_get("id")?;
            Ok(Some(id.parse().map_err(|_| {
                StoreError::Corrupt(format!("run id {id}"))
            })?))
        }
        None => Ok(None),
    }
}

pub(crate) async fn run(pool: &AnyPool, id: RunId) -> Result<Run> {
    let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::NotFound("run"))?;
    run_from_row(&row)
}

pub(crate) async fn runs(
    pool: &AnyPool,
    app: AppId,
    limit: i64,
    before: Option<(i64, RunId)>,
) -> Result<Vec<Run>> {
    let (micros, id) = before
        .map(|(m, id)| (m, id.to_string()))
        .unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE app_id = $1 \
         AND (created_at < $2 OR (created_at = $2 AND id < $3) OR $3 = '') \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(app.to_string())
    .bind(micros)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(run_from_row).collect()
}

pub(crate) async fn append_event(
    pool: &AnyPool,
    run: RunId,
    body: EventBody,
    diagnostics: Vec<Diagnostic>,
) -> Result<RunEvent> {
    let from: Vec<RunStatus> = match &body {
        EventBody::RunStarted { .. } => RunStatus::predecessors(RunStatus::Running),
        other => match other.terminal_status() {
            Some(next) => RunStatus::predecessors(next),
            None => RunStatus::ACTIVE.to_vec(),
        },
    };
    let mut tx = crate::db::begin_write(pool).await?;
    let event = append_in_tx(&mut tx, run, body, diagnostics, &from).await?;
    tx.commit().await?;
    Ok(event)
}

/// Claims the next `seq` (and applies the status change the event implies) only while the
/// run is in one of `from`; then writes the event.
pub(crate) async fn append_in_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    run: RunId,
    body: EventBody,
    diagnostics: Vec<Diagnostic>,
    from: &[RunStatus],
) -> Result<RunEvent> {
    let now = Timestamp::now();
    let status = match &body {
        EventBody::RunStarted { .. } => Some(RunStatus::Running),
        other => other.terminal_status(),
    };
    let (error_code, error_message) = match &body {
        EventBody::RunFailed { error } => (Some(error.code.as_str()), Some(error.message.clone())),
        _ => (None, None),
    };
    let (summary, result_revision) = match &body {
        EventBody::RunCompleted { revision, summary } => (Some(summary.clone()), Some(*revision)),
        _ => (None, None),
    };
    let claimed = sqlx::query(&format!(
        "UPDATE runs SET next_seq = next_seq + 1, \
           status = COALESCE($2, status), \
           started_at = CASE WHEN $2 = 'running' THEN $3 ELSE started_at END, \
           ended_at = CASE WHEN $2 IS NOT NULL AND $2 <> 'running' THEN $3 ELSE ended_at END, \
           error_code = COALESCE($4, error_code), error_message = COALESCE($5, error_message), \
           summary = COALESCE($6, summary), result_revision = COALESCE($7, result_revision) \
         WHERE id = $1 AND status IN ({}) RETURNING next_seq, app_id",
        sql_list(from)
    ))
    .bind(run.to_string())
    .bind(status.map(|s| s.as_str().to_owned()))
    .bind(now.as_micros())
    .bind(error_code.map(str::to_owned))
    .bind(error_message)
    .bind(summary)
    .bind(result_revision)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(claimed) = claimed else {
        return Err(StoreError::RunEnded);
    };
    let seq: i64 = claimed.try_get("next_seq")?;
    let app: String = claimed.try_get("app_id")?;
    let event = RunEvent {
        stage: body.stage(),
        body,
        run_id: run,
        app_id: app
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("app id {app}")))?,
        seq,
        ts: now,
        diagnostics,
    };
    let json = serde_json::to_string(&event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query("INSERT INTO run_events (run_id, seq, event_type, body, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(run.to_string())
        .bind(seq)
        .bind(event.body.event_type())
        .bind(json)
        .bind(now.as_micros())
        .execute(&mut **tx)
        .await?;
    Ok(event)
}

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
    rows.iter()
        .map(|row| {
            let body: String = row.try_get("body")?;
            serde_json::from_str(&body)
                .map_err(|e| StoreError::Corrupt(format!("event of run {run}: {e}")))
        })
        .collect()
}

pub(crate) async fn set_timing(
    pool: &AnyPool,
    run: RunId,
    timing: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    let mut tx = pool.begin().await?;
    set_timing_in_tx(&mut tx, run, timing).await?;
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn set_timing_in_tx(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    run: RunId,
    timing: &serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    let json = serde_json::to_string(timing).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query("UPDATE runs SET timing_metrics_ms = $2 WHERE id = $1")
        .bind(run.to_string())
        .bind(json)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) async fn request_cancel(pool: &AnyPool, run: RunId, by: &UserId) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE runs SET cancel_requested_by = COALESCE(cancel_requested_by, $2) \
         WHERE id = $1 AND status IN ({})",
        active_list()
    ))
    .bind(run.to_string())
    .bind(&by.0)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn runs_to_cancel(
    pool: &AnyPool,
    owner: InstanceId,
) -> Result<Vec<(RunId, String)>> {
    let rows = sqlx::query(&format!(
        "SELECT id, cancel_requested_by FROM runs WHERE owner_instance = $1 \
         AND cancel_requested_by IS NOT NULL AND status IN ({})",
        active_list()
    ))
    .bind(owner.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            let by: String = row.try_get("cancel_requested_by")?;
            Ok((
                id.parse()
                    .map_err(|_| StoreError::Corrupt(format!("run id {id}")))?,
                by,
            ))
        })
        .collect()
}

pub(crate) async fn renew_leases(
    pool: &AnyPool,
    owner: InstanceId,
    runs: &[RunId],
    until: Timestamp,
) -> Result<()> {
    for run in runs {
        sqlx::query(&format!(
            "UPDATE runs SET lease_expires_at = $3 WHERE id = $1 AND owner_instance = $2 AND status IN ({})",
            active_list()
        ))
        .bind(run.to_string())
        .bind(owner.to_string())
        .bind(until.as_micros())
        .execute(pool)
        .await?;
    }
    Ok(())
}

pub(crate) async fn orphaned_runs(
    pool: &AnyPool,
    previous_life: Option<InstanceId>,
    now: Timestamp,
) -> Result<Vec<RunId>> {
    let rows = sqlx::query(&format!(
        "SELECT id FROM runs WHERE status IN ({}) AND (owner_instance = $1 OR lease_expires_at < $2)",
        active_list()
    ))
    .bind(previous_life.map(|i| i.to_string()).unwrap_or_default())
    .bind(now.as_micros())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            id.parse()
                .map_err(|_| StoreError::Corrupt(format!("run id {id}")))
        })
        .collect()
}
