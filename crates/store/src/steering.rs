//! Steering: a message a person sends to a run while it works. It is saved three ways in
//! one transaction — a chat message of the run's session, the run's `user.message` event
//! and a row waiting for delivery — and the instance executing the run claims waiting rows
//! for its engine, so a message posted to any instance reaches the owner exactly once.

use async_trait::async_trait;
use draftsmith_core::api::{ChatRole, MessageStatus};
use draftsmith_core::{EventBody, InstanceId, RunEvent, RunId, Timestamp};
use sqlx::Row;

use crate::chat;
use crate::db::SqlStore;
use crate::error::{Result, StoreError};
use crate::rules;
use crate::run_log;
use crate::sql;

/// A steering message claimed for delivery to its run's engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steer {
    /// The run it is for.
    pub run: RunId,
    /// Its `user.message` event's `seq`, which orders a run's messages.
    pub seq: i64,
    /// What the person wrote.
    pub text: String,
}

/// Messages sent to running runs.
#[async_trait]
pub trait SteeringStore: Send + Sync {
    /// Saves `text` as a user chat message of the run's session, its `user.message` event
    /// and a message waiting for delivery; [`StoreError::RunEnded`] once the run is
    /// terminal (nothing is saved then).
    async fn steer(&self, run: RunId, text: &str) -> Result<RunEvent>;
    /// Claims every message waiting for an active run `owner` executes, oldest first per
    /// run; a message is claimed once, whichever instance asks.
    async fn claim_steering(&self, owner: InstanceId) -> Result<Vec<Steer>>;
}

#[async_trait]
impl SteeringStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(run = %run))]
    async fn steer(&self, run: RunId, text: &str) -> Result<RunEvent> {
        let mut tx = self.writer.begin().await?;
        let now = Timestamp::now();
        let row = sqlx::query("SELECT chat_session_id FROM runs WHERE id = $1")
            .bind(run.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("run"))?;
        let session = sql::id(&row, "chat_session_id")?;
        let (role, complete) = (ChatRole::User, MessageStatus::Complete);
        let message = chat::new_message(session, Some(run), role, text, complete, now);
        chat::insert_message(&mut tx, &message).await?;
        let body = EventBody::UserMessage {
            message_id: message.id,
            text: text.to_owned(),
        };
        let event = run_log::append_in_tx(&mut tx, run, body, Vec::new()).await?;
        sqlx::query(
            "INSERT INTO run_steering (run_id, seq, text, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(run.to_string())
        .bind(event.seq)
        .bind(text)
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(event)
    }

    #[tracing::instrument(level = "trace", skip_all, fields(owner = %owner))]
    async fn claim_steering(&self, owner: InstanceId) -> Result<Vec<Steer>> {
        let rows = sqlx::query(&format!(
            "UPDATE run_steering SET delivered_at = $2 WHERE delivered_at IS NULL \
             AND run_id IN (SELECT id FROM runs WHERE owner_instance = $1 AND status IN ({})) \
             RETURNING run_id, seq, text",
            rules::active_sql()
        ))
        .bind(owner.to_string())
        .bind(Timestamp::now().as_micros())
        .fetch_all(&mut *self.writer.acquire().await?)
        .await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                Ok(Steer {
                    run: sql::id(row, "run_id")?,
                    seq: row.try_get("seq")?,
                    text: row.try_get("text")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|s| (s.run.to_string(), s.seq));
        Ok(claimed)
    }
}
