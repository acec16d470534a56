//! The queue aggregate: prompts accepted while an app's run is active, started in order.
//! Every change locks the app row first (as run creation does), so the order of
//! acceptance is the order of the queue; starting the head deletes it in the transaction
//! that inserts its run, under the one-active-run index, so no prompt starts twice.

use async_trait::async_trait;
use draftsmith_core::api::{QueueState, QueuedPrompt, Run};
use draftsmith_core::{
    AppEventBody, AppId, ChatSessionId, EngineKind, QueueItemId, Timestamp, UserId,
};
use sqlx::Row;

use crate::app_log;
use crate::chat;
use crate::db::SqlStore;
use crate::draft_writes::lock_app;
use crate::error::{Result, StoreError};
use crate::queue_rows::{self, COLUMNS};
use crate::run_start::{self, NewRun};
use crate::sql::{self, Tx};

/// A prompt to queue, already validated (engine and model resolved).
#[derive(Debug, Clone)]
pub struct NewQueued {
    /// The app.
    pub app: AppId,
    /// Who queues it.
    pub user: UserId,
    /// The session it continues (checked to be the user's on the app).
    pub chat_session: Option<ChatSessionId>,
    /// Engine.
    pub engine: EngineKind,
    /// What was asked for.
    pub requested_model_id: String,
    /// What it resolved to.
    pub resolved_model_id: String,
    /// The prompt.
    pub input: String,
}

/// Where a moved item goes.
#[derive(Debug, Clone, Copy)]
pub enum QueueTarget {
    /// Just before this item.
    Before(QueueItemId),
    /// At this 1-based position (clamped to the queue).
    Position(i64),
}

/// What starting the head of a queue needs besides the item.
#[derive(Debug, Clone)]
pub struct NextRun {
    /// The app.
    pub app: AppId,
    /// The instance that will execute it.
    pub owner: draftsmith_core::InstanceId,
    /// Its first lease.
    pub lease_until: Timestamp,
    /// What the run is given besides the prompt.
    pub input_params: serde_json::Value,
    /// `queue_after_failure = "hold"`: a failed latest run holds the queue.
    pub hold_after_failure: bool,
}

/// The apps' prompt queues.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Appends a prompt to the app's queue. A session that is not the user's on the app is
    /// [`StoreError::NotFound`].
    async fn enqueue(&self, new: NewQueued) -> Result<QueuedPrompt>;
    /// The app's queue, next first, and whether it is held (with `hold_after_failure`).
    async fn queue(&self, app: AppId, hold_after_failure: bool) -> Result<QueueState>;
    /// Removes an item; [`StoreError::NotFound`] when it is not (or no longer) queued.
    async fn remove_queued(&self, app: AppId, item: QueueItemId) -> Result<()>;
    /// Moves an item; the queue after the move.
    async fn move_queued(
        &self,
        app: AppId,
        item: QueueItemId,
        target: QueueTarget,
    ) -> Result<Vec<QueuedPrompt>>;
    /// Lifts a hold: the queue goes on after the app's latest (failed) run.
    async fn resume_queue(&self, app: AppId) -> Result<()>;
    /// Starts the head of the app's queue as a run, unless the app has an active run, the
    /// queue is empty or held; the item is gone in the same transaction.
    async fn start_next_queued(&self, next: NextRun) -> Result<Option<Run>>;
    /// Apps with queued prompts and no active run.
    async fn apps_with_waiting_queue(&self) -> Result<Vec<AppId>>;
    /// Prompts queued across every app (the metrics' queue depth).
    async fn queue_depth(&self) -> Result<u64>;
}

/// Reads the position after the last item.
async fn next_position(tx: &mut Tx, app: AppId) -> Result<i64> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(MAX(position), 0) AS BIGINT) AS last FROM run_queue \
         WHERE app_id = $1",
    )
    .bind(app.to_string())
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get::<i64, _>("last")? + 1)
}

/// Tells the app's log the queue as it is now (the caller changed it); answers it.
async fn queue_changed(tx: &mut Tx, app: AppId) -> Result<Vec<QueuedPrompt>> {
    let items = queue_rows::list_in_tx(tx, app).await?;
    let changed = AppEventBody::QueueChanged {
        items: items.clone(),
    };
    app_log::append_in_tx(tx, app, changed).await?;
    Ok(items)
}

/// The queue's order with `item` moved to `target`.
fn reorder(
    items: &[QueuedPrompt],
    item: QueueItemId,
    target: QueueTarget,
) -> Result<Vec<QueueItemId>> {
    let mut order: Vec<QueueItemId> = items.iter().map(|i| i.id).collect();
    let from = order
        .iter()
        .position(|id| *id == item)
        .ok_or(StoreError::NotFound("queue item"))?;
    order.remove(from);
    let to = match target {
        QueueTarget::Before(other) if other == item => from,
        QueueTarget::Before(other) => order
            .iter()
            .position(|id| *id == other)
            .ok_or(StoreError::NotFound("queue item"))?,
        QueueTarget::Position(n) => (n.max(1) as usize - 1).min(order.len()),
    };
    order.insert(to, item);
    Ok(order)
}

#[async_trait]
impl QueueStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(app = %new.app))]
    async fn enqueue(&self, new: NewQueued) -> Result<QueuedPrompt> {
        let mut tx = self.writer.begin().await?;
        lock_app(&mut tx, new.app).await?;
        if let Some(session) = new.chat_session
            && !chat::session_belongs(&mut tx, session, new.app, &new.user).await?
        {
            return Err(StoreError::NotFound("chat session"));
        }
        let id = QueueItemId::new();
        let position = next_position(&mut tx, new.app).await?;
        sqlx::query(&format!(
            "INSERT INTO run_queue ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(id.to_string())
        .bind(new.app.to_string())
        .bind(position)
        .bind(&new.input)
        .bind(&new.requested_model_id)
        .bind(&new.resolved_model_id)
        .bind(new.engine.as_str())
        .bind(new.chat_session.map(|s| s.to_string()))
        .bind(&new.user.0)
        .bind(Timestamp::now().as_micros())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM run_queue WHERE id = $1"))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let item = queue_rows::from_row(&row)?;
        queue_changed(&mut tx, new.app).await?;
        tx.commit().await?;
        Ok(item)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app))]
    async fn queue(&self, app: AppId, hold_after_failure: bool) -> Result<QueueState> {
        if !hold_after_failure {
            // One statement needs no transaction of its own.
            let items = queue_rows::list(&self.pool, app).await?;
            return Ok(QueueState { items, held: false });
        }
        let mut tx = sql::Tx::begin_on(&self.pool).await?;
        let items = queue_rows::list_in_tx(&mut tx, app).await?;
        let held = hold_after_failure && queue_rows::held_in_tx(&mut tx, app).await?;
        tx.commit().await?;
        Ok(QueueState { items, held })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app, item = %item))]
    async fn remove_queued(&self, app: AppId, item: QueueItemId) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        lock_app(&mut tx, app).await?;
        let deleted = sqlx::query("DELETE FROM run_queue WHERE id = $1 AND app_id = $2")
            .bind(item.to_string())
            .bind(app.to_string())
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound("queue item"));
        }
        let order: Vec<QueueItemId> = queue_rows::list_in_tx(&mut tx, app)
            .await?
            .iter()
            .map(|i| i.id)
            .collect();
        queue_rows::renumber(&mut tx, &order).await?;
        queue_changed(&mut tx, app).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app, item = %item))]
    async fn move_queued(
        &self,
        app: AppId,
        item: QueueItemId,
        target: QueueTarget,
    ) -> Result<Vec<QueuedPrompt>> {
        let mut tx = self.writer.begin().await?;
        lock_app(&mut tx, app).await?;
        let items = queue_rows::list_in_tx(&mut tx, app).await?;
        let order = reorder(&items, item, target)?;
        queue_rows::renumber(&mut tx, &order).await?;
        let items = queue_changed(&mut tx, app).await?;
        tx.commit().await?;
        Ok(items)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app))]
    async fn resume_queue(&self, app: AppId) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        lock_app(&mut tx, app).await?;
        sqlx::query(
            "UPDATE apps SET queue_resumed_after = (SELECT id FROM runs WHERE app_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1) WHERE id = $1",
        )
        .bind(app.to_string())
        .execute(&mut *tx)
        .await?;
        queue_changed(&mut tx, app).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %next.app))]
    async fn start_next_queued(&self, next: NextRun) -> Result<Option<Run>> {
        let mut tx = self.writer.begin().await?;
        let base = lock_app(&mut tx, next.app).await?;
        if next.hold_after_failure && queue_rows::held_in_tx(&mut tx, next.app).await? {
            return Ok(None);
        }
        let Some(head) = queue_rows::list_in_tx(&mut tx, next.app)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM run_queue WHERE id = $1")
            .bind(head.id.to_string())
            .execute(&mut *tx)
            .await?;
        let new = NewRun {
            app: next.app,
            user: head.created_by,
            chat_session: head.chat_session_id,
            new_chat_id: None,
            engine: head.engine,
            requested_model_id: head.requested_model_id,
            resolved_model_id: head.resolved_model_id,
            input: head.input,
            owner: next.owner,
            lease_until: next.lease_until,
            input_params: next.input_params,
            attachments: Vec::new(),
            seen_revision: None,
        };
        let Some(run) = run_start::start_in_tx(&mut tx, &new, base).await? else {
            return Ok(None);
        };
        let order: Vec<QueueItemId> = queue_rows::list_in_tx(&mut tx, next.app)
            .await?
            .iter()
            .map(|i| i.id)
            .collect();
        queue_rows::renumber(&mut tx, &order).await?;
        queue_changed(&mut tx, next.app).await?;
        tx.commit().await?;
        Ok(Some(run))
    }

    #[tracing::instrument(level = "trace", skip_all)]
    async fn apps_with_waiting_queue(&self) -> Result<Vec<AppId>> {
        let rows = sqlx::query(&format!(
            "SELECT DISTINCT q.app_id FROM run_queue q WHERE NOT EXISTS \
             (SELECT 1 FROM runs r WHERE r.app_id = q.app_id AND r.status IN ({}))",
            crate::rules::active_sql()
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| sql::id(row, "app_id")).collect()
    }

    async fn queue_depth(&self) -> Result<u64> {
        let row = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM run_queue")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?.max(0) as u64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn item(id: QueueItemId) -> QueuedPrompt {
        QueuedPrompt {
            id,
            app_id: AppId::new(),
            position: 0,
            input: "x".into(),
            requested_model_id: "auto".into(),
            resolved_model_id: "m".into(),
            engine: EngineKind::Native,
            chat_session_id: None,
            created_by: UserId("u".into()),
            created_at: Timestamp::now(),
        }
    }

    #[test]
    fn reorder_moves_before_an_item_or_to_a_clamped_position() {
        let ids: Vec<QueueItemId> = (0..4).map(|_| QueueItemId::new()).collect();
        let items: Vec<QueuedPrompt> = ids.iter().copied().map(item).collect();
        let before = reorder(&items, ids[3], QueueTarget::Before(ids[1])).unwrap();
        assert_eq!(before, [ids[0], ids[3], ids[1], ids[2]]);
        let first = reorder(&items, ids[2], QueueTarget::Position(0)).unwrap();
        assert_eq!(first, [ids[2], ids[0], ids[1], ids[3]]);
        let last = reorder(&items, ids[0], QueueTarget::Position(99)).unwrap();
        assert_eq!(last, [ids[1], ids[2], ids[3], ids[0]]);
        let missing = reorder(&items, QueueItemId::new(), QueueTarget::Position(1));
        assert!(matches!(missing, Err(StoreError::NotFound(_))));
    }
}
