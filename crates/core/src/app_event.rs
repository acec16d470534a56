//! The app event stream (`GET …/coding-agent/events`): what happens to an app as a whole —
//! runs accepted and ended, the queue changed, the draft revised — so a client follows an
//! app without knowing its run ids. Numbered per app (1, 2, 3… no gaps), resumable like a
//! run's stream.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::QueuedPrompt;
use crate::{AppId, ChatSessionId, RunId, RunStatus, Timestamp, UserId};

/// One event of an app, as persisted and as sent over SSE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AppEvent {
    /// The event's type and payload.
    #[serde(flatten)]
    #[schema(inline)]
    pub body: AppEventBody,
    /// The app.
    pub app_id: AppId,
    /// Position in the app's log: 1, 2, 3… with no gaps.
    pub seq: i64,
    /// When it was recorded.
    #[schema(value_type = String, format = DateTime)]
    pub ts: Timestamp,
}

/// Every app event type with its payload; `event` is the SSE event name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", content = "payload")]
pub enum AppEventBody {
    /// A run was persisted (started directly or from the queue).
    #[serde(rename = "run.accepted")]
    RunAccepted {
        /// The run.
        run_id: RunId,
        /// Its chat session.
        chat_session_id: ChatSessionId,
        /// Its prompt.
        input: String,
        /// Who started or queued it.
        created_by: UserId,
    },
    /// A run reached a terminal state.
    #[serde(rename = "run.ended")]
    RunEnded {
        /// The run.
        run_id: RunId,
        /// `completed`, `failed`, `cancelled` or `paused`.
        status: RunStatus,
    },
    /// The queue changed (a prompt queued, removed, moved, started, or a hold lifted).
    #[serde(rename = "queue.changed")]
    QueueChanged {
        /// The queue after the change, next first.
        items: Vec<QueuedPrompt>,
    },
    /// The draft moved to a new revision (a write, a restore, a run's landing).
    #[serde(rename = "draft.revised")]
    DraftRevised {
        /// The new revision.
        revision: i64,
        /// Who made it.
        author: UserId,
    },
}

impl AppEventBody {
    /// Every app event name (the web UI's list is generated from it).
    pub const TYPES: [&'static str; 4] = [
        "run.accepted",
        "run.ended",
        "queue.changed",
        "draft.revised",
    ];

    /// The SSE event name.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::RunAccepted { .. } => "run.accepted",
            Self::RunEnded { .. } => "run.ended",
            Self::QueueChanged { .. } => "queue.changed",
            Self::DraftRevised { .. } => "draft.revised",
        }
    }
}
