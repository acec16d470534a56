//! The run aggregate: runs, their event logs, leases and cancellation, and the landing of a
//! run's result. Starting a run is [`crate::run_start`], appending to its log
//! [`crate::run_log`], landing [`crate::landing`].

use async_trait::async_trait;
use draftsmith_core::api::Run;
use draftsmith_core::{
    AppId, Diagnostic, EventBody, InstanceId, RunEvent, RunId, Timestamp, UserId,
};
use sqlx::Row;

use crate::db::{Backend, SqlStore};
use crate::error::Result;
use crate::landing::{self, Landed, Landing};
use crate::rules;
use crate::run_start::{self, NewRun};
use crate::sql;
use crate::usage::{self, NewModelCall};
use crate::{run_log, run_rows};

/// Runs and their event logs.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Persists a run, its user message and its `run.accepted` event at once (creating the
    /// chat session when none is named). A second active run on the app is
    /// [`crate::StoreError::RunActive`].
    async fn create_run(&self, new: NewRun) -> Result<Run>;
    /// One run.
    async fn run(&self, id: RunId) -> Result<Run>;
    /// An app's runs, newest first, before the `(created_at, id)` cursor.
    async fn runs(&self, app: AppId, limit: i64, before: Option<(i64, RunId)>) -> Result<Vec<Run>>;
    /// The app's active run, if any.
    async fn active_run(&self, app: AppId) -> Result<Option<RunId>>;
    /// Appends an event with the next `seq`, applying the status change it implies; fails
    /// with [`crate::StoreError::RunEnded`] once the run is terminal.
    async fn append_event(
        &self,
        run: RunId,
        body: EventBody,
        diagnostics: Vec<Diagnostic>,
    ) -> Result<RunEvent>;
    /// Records the model `calls` (each added to the run's usage totals) and appends
    /// `events` after them in order, in one transaction: all of it or none. A run's
    /// progress is written this way, behind its engine.
    async fn append_events(
        &self,
        run: RunId,
        calls: Vec<NewModelCall>,
        events: Vec<(EventBody, Vec<Diagnostic>)>,
    ) -> Result<Vec<RunEvent>>;
    /// Events with `seq > after`, in order.
    async fn events_after(&self, run: RunId, after: i64, limit: i64) -> Result<Vec<RunEvent>>;
    /// Records the run's phase timings.
    async fn set_run_timing(
        &self,
        run: RunId,
        timing: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()>;
    /// Marks an active run for cancellation; its executing instance acts on it.
    async fn request_cancel(&self, run: RunId, by: &UserId) -> Result<()>;
    /// Active runs owned by `owner` that someone asked to cancel, with who asked.
    async fn runs_to_cancel(&self, owner: InstanceId) -> Result<Vec<(RunId, String)>>;
    /// Extends the leases `owner` holds on `runs`.
    async fn renew_leases(&self, owner: InstanceId, runs: &[RunId], until: Timestamp)
    -> Result<()>;
    /// Has the active runs' new events announced to other instances until `until`:
    /// `watcher` follows them from another instance than the one executing them. Runs
    /// `watcher` executes itself are left alone (its followers hear of them in process),
    /// and so is everything on SQLite, whose one process has no other instance to tell.
    async fn watch_runs(&self, watcher: InstanceId, runs: &[RunId], until: Timestamp)
    -> Result<()>;
    /// Active runs whose lease expired before `now`, plus all active runs of
    /// `previous_life` (this instance before a restart).
    async fn orphaned_runs(
        &self,
        previous_life: Option<InstanceId>,
        now: Timestamp,
    ) -> Result<Vec<RunId>>;
    /// Lands a run's result: the draft revision, `draft.synced`, the `post_run` checkpoint
    /// and its event, the assistant's message, the timings and the terminal event, in one
    /// transaction. [`crate::StoreError::RevisionConflict`] when the draft moved past
    /// `landing.expected`, [`crate::StoreError::RunEnded`] when the run already ended;
    /// either way nothing is written.
    async fn land_run(&self, landing: Landing) -> Result<Landed>;
    /// What `user` has going, for fair-use limits: active runs across apps, and the runs
    /// created at or after `since` with the oldest one's creation time.
    async fn user_activity(&self, user: &UserId, since: Timestamp) -> Result<UserActivity>;
}

/// A user's runs as the fair-use limits count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserActivity {
    /// Runs queued or running, on any app.
    pub active: u64,
    /// Runs created in the window.
    pub recent: u64,
    /// When the oldest of those was created.
    pub oldest_recent: Option<Timestamp>,
}

#[async_trait]
impl RunStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(app = %new.app, engine = new.engine.as_str()))]
    async fn create_run(&self, new: NewRun) -> Result<Run> {
        run_start::create_run(self, new).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(run = %id))]
    async fn run(&self, id: RunId) -> Result<Run> {
        run_rows::get(&self.pool, id).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app, limit = limit))]
    async fn runs(&self, app: AppId, limit: i64, before: Option<(i64, RunId)>) -> Result<Vec<Run>> {
        let (micros, id) = before
            .map(|(m, id)| (m, id.to_string()))
            .unwrap_or((i64::MAX, String::new()));
        let rows = sqlx::query(&format!(
            "{} WHERE app_id = $1 \
             AND (created_at < $2 OR (created_at = $2 AND id < $3) OR $3 = '') \
             ORDER BY created_at DESC, id DESC LIMIT $4",
            run_rows::select()
        ))
        .bind(app.to_string())
        .bind(micros)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_rows::from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app))]
    async fn active_run(&self, app: AppId) -> Result<Option<RunId>> {
        run_rows::active(&self.pool, app).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(run = %run, event = body.event_type()))]
    async fn append_event(
        &self,
        run: RunId,
        body: EventBody,
        diagnostics: Vec<Diagnostic>,
    ) -> Result<RunEvent> {
        let mut tx = self.writer.begin().await?;
        let event = run_log::append_in_tx(&mut tx, run, body, diagnostics).await?;
        tx.commit().await?;
        Ok(event)
    }

    #[tracing::instrument(level = "trace", skip_all, fields(run = %run, events = events.len()))]
    async fn append_events(
        &self,
        run: RunId,
        calls: Vec<NewModelCall>,
        events: Vec<(EventBody, Vec<Diagnostic>)>,
    ) -> Result<Vec<RunEvent>> {
        // What leaves the run active (the engine's progress, most batches) goes out in one
        // call instead of five.
        if run_log::fits_at_once(run, &calls, &events) {
            let batch = run_log::Batch::leaving_active(&calls, events);
            return run_log::append_at_once(&self.writer, run, batch).await;
        }
        let mut tx = self.writer.begin().await?;
        // The calls go with the first claim of seqs (one statement claims them and adds the
        // usage); with no event to go with, or of another run, on their own first.
        let mut calls = Some(calls).filter(|c| !c.is_empty());
        if events.is_empty() || calls.iter().flatten().any(|call| call.run != run) {
            for call in calls.take().iter().flatten() {
                usage::record_in_tx(&mut tx, call).await?;
            }
        }
        // Progress (no status change) goes out a run of events at a time, with the event
        // that moves the status after it, if any.
        let mut appended = Vec::with_capacity(events.len());
        let mut progress = Vec::new();
        for (body, diagnostics) in events {
            if rules::status_after(&body).is_none() {
                progress.push((body, diagnostics));
                continue;
            }
            let with = calls.take().unwrap_or_default();
            let batch = run_log::Batch {
                calls: &with,
                progress: std::mem::take(&mut progress),
                last: Some((body, diagnostics)),
                timing: None,
            };
            appended.extend(run_log::append_batch_in_tx(&mut tx, run, batch).await?);
        }
        if !progress.is_empty() {
            let with = calls.take().unwrap_or_default();
            appended.extend(run_log::append_progress_in_tx(&mut tx, run, &with, progress).await?);
        }
        tx.commit().await?;
        Ok(appended)
    }

    #[tracing::instrument(level = "trace", skip_all, fields(run = %run, after = after))]
    async fn events_after(&self, run: RunId, after: i64, limit: i64) -> Result<Vec<RunEvent>> {
        run_log::events_after(&self.pool, run, after, limit).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(run = %run))]
    async fn set_run_timing(
        &self,
        run: RunId,
        timing: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        run_log::set_timing(&self.writer, run, timing).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(run = %run, by = %by.0))]
    async fn request_cancel(&self, run: RunId, by: &UserId) -> Result<()> {
        sqlx::query(&format!(
            "UPDATE runs SET cancel_requested_by = COALESCE(cancel_requested_by, $2) \
             WHERE id = $1 AND status IN ({})",
            rules::active_sql()
        ))
        .bind(run.to_string())
        .bind(&by.0)
        .execute(&mut *self.writer.acquire().await?)
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "trace", skip_all, fields(owner = %owner))]
    async fn runs_to_cancel(&self, owner: InstanceId) -> Result<Vec<(RunId, String)>> {
        let rows = sqlx::query(&format!(
            "SELECT id, cancel_requested_by FROM runs WHERE owner_instance = $1 \
             AND cancel_requested_by IS NOT NULL AND status IN ({})",
            rules::active_sql()
        ))
        .bind(owner.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((sql::id(row, "id")?, row.try_get("cancel_requested_by")?)))
            .collect()
    }

    #[tracing::instrument(level = "trace", skip_all, fields(owner = %owner, runs = runs.len()))]
    async fn renew_leases(
        &self,
        owner: InstanceId,
        runs: &[RunId],
        until: Timestamp,
    ) -> Result<()> {
        let statement = format!(
            "UPDATE runs SET lease_expires_at = $3 \
             WHERE id = $1 AND owner_instance = $2 AND status IN ({})",
            rules::active_sql()
        );
        for run in runs {
            sqlx::query(&statement)
                .bind(run.to_string())
                .bind(owner.to_string())
                .bind(until.as_micros())
                .execute(&mut *self.writer.acquire().await?)
                .await?;
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn watch_runs(
        &self,
        watcher: InstanceId,
        runs: &[RunId],
        until: Timestamp,
    ) -> Result<()> {
        if self.backend != Backend::Postgres || runs.is_empty() {
            return Ok(());
        }
        for chunk in runs.chunks(sql::CHUNK) {
            let statement = format!(
                "UPDATE runs SET watched_until = $1 WHERE watched_until < $1 \
                 AND owner_instance <> $2 AND status IN ({}) AND id IN ({})",
                rules::active_sql(),
                sql::Marks::Numbered.list(3, chunk.len())
            );
            let mut query = sqlx::query(&statement)
                .bind(until.as_micros())
                .bind(watcher.to_string());
            for run in chunk {
                query = query.bind(run.to_string());
            }
            query.execute(&mut *self.writer.acquire().await?).await?;
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn orphaned_runs(
        &self,
        previous_life: Option<InstanceId>,
        now: Timestamp,
    ) -> Result<Vec<RunId>> {
        let rows = sqlx::query(&format!(
            "SELECT id FROM runs WHERE status IN ({}) \
             AND (owner_instance = $1 OR lease_expires_at < $2)",
            rules::active_sql()
        ))
        .bind(previous_life.map(|i| i.to_string()).unwrap_or_default())
        .bind(now.as_micros())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| sql::id(row, "id")).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.0))]
    async fn user_activity(&self, user: &UserId, since: Timestamp) -> Result<UserActivity> {
        let row = sqlx::query(&format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN status IN ({}) THEN 1 ELSE 0 END), 0) AS BIGINT) AS active, \
               CAST(COALESCE(SUM(CASE WHEN created_at >= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS recent, \
               MIN(CASE WHEN created_at >= $2 THEN created_at END) AS oldest \
             FROM runs WHERE created_by = $1",
            rules::active_sql()
        ))
        .bind(&user.0)
        .bind(since.as_micros())
        .fetch_one(&self.pool)
        .await?;
        let count = |name: &str| -> Result<u64> {
            Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or_default())
        };
        Ok(UserActivity {
            active: count("active")?,
            recent: count("recent")?,
            oldest_recent: sql::time_opt(&row, "oldest")?,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %landing.app, run = %landing.run, expected = landing.expected))]
    async fn land_run(&self, landing: Landing) -> Result<Landed> {
        landing::land(self, landing).await
    }
}
