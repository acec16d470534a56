//! The app's server-side prompt queue: prompts accepted while a run is active, started in
//! order by whichever instance sees the active run end.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AppId, ChatSessionId, EngineKind, QueueItemId, Timestamp, UserId};

/// What `POST runs` does while the app has an active run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WhenBusy {
    /// Refuse with 409 `CODING_AGENT_RUN_ACTIVE` (the default).
    Fail,
    /// Put the prompt at the end of the app's queue (202).
    Queue,
}

/// A prompt waiting in the app's queue, validated when it was accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueuedPrompt {
    /// Its id.
    pub id: QueueItemId,
    /// Its app.
    pub app_id: AppId,
    /// 1 for the next prompt to start.
    pub position: i64,
    /// The prompt.
    pub input: String,
    /// What was asked for (`auto` when omitted).
    pub requested_model_id: String,
    /// What it resolved to when accepted; the run is pinned to it.
    pub resolved_model_id: String,
    /// The engine it will run on.
    pub engine: EngineKind,
    /// The chat session it continues; a new one when it starts, if none.
    pub chat_session_id: Option<ChatSessionId>,
    /// Who queued it (the run's creator).
    pub created_by: UserId,
    /// When it was accepted.
    pub created_at: Timestamp,
}

/// `GET …/coding-agent/queue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueState {
    /// The waiting prompts, next first.
    pub items: Vec<QueuedPrompt>,
    /// True while a failed run holds the queue (`queue_after_failure = "hold"`) until
    /// `POST …/queue/resume`.
    pub held: bool,
}

/// `POST …/queue/{item_id}/move`: exactly one of `before` and `position`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveQueueItem {
    /// Put the item just before this one.
    #[serde(default)]
    pub before: Option<QueueItemId>,
    /// Put the item at this position (1 = next; past the end = last).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub position: Option<i64>,
}
