//! Chat sessions and checkpoints.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{CheckpointKind, FilesChanged};
use crate::{AppId, Timestamp, UserId};

/// One conversation of one user on one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatSession {
    /// Its id.
    pub id: crate::ChatSessionId,
    /// The app.
    pub app_id: AppId,
    /// Its owner.
    pub user_id: UserId,
    /// The first prompt, shortened.
    pub title: String,
    /// Started at.
    pub created_at: Timestamp,
    /// Last message at.
    pub updated_at: Timestamp,
}

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    /// The person.
    User,
    /// The agent.
    Assistant,
}

/// Whether a message is whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// The full message.
    Complete,
    /// What an agent had said when its run was cancelled or failed.
    Partial,
}

/// One message of a chat session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// Its id.
    pub id: String,
    /// The session.
    pub session_id: crate::ChatSessionId,
    /// The run it belongs to.
    pub run_id: Option<crate::RunId>,
    /// Who wrote it.
    pub role: ChatRole,
    /// Its text.
    pub content: String,
    /// Whole or partial.
    pub status: MessageStatus,
    /// Files the person attached (user messages only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<super::MessageAttachment>,
    /// Written at.
    pub created_at: Timestamp,
}

/// An immutable pointer to a draft manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// Its id.
    pub id: String,
    /// The app.
    pub app_id: AppId,
    /// Why it was taken.
    pub kind: CheckpointKind,
    /// The draft revision it points at (for `rejected`: the revision its work was based on).
    pub revision: i64,
    /// The run that took it.
    pub run_id: Option<crate::RunId>,
    /// A label for people.
    pub label: String,
    /// Who took it.
    pub created_by: UserId,
    /// When.
    pub created_at: Timestamp,
    /// What differs from the previous checkpoint (in time); filled in listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<FilesChanged>,
}

/// `GET …/coding-agent/checkpoints`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointList {
    /// This page.
    pub checkpoints: Vec<Checkpoint>,
    /// Pass as `?before=` for the next page.
    pub next_before: Option<String>,
}

/// `POST …/coding-agent/checkpoints`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCheckpoint {
    /// A label for people, up to 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub label: Option<String>,
}

/// `POST …/runs/{run_id}/revert`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertRun {
    /// Revert even when the draft changed after the run.
    #[serde(default)]
    pub force: bool,
}

/// Answer to a restore or revert: the new revision and the checkpoint that keeps what it
/// replaced (so the restore can itself be undone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Restored {
    /// The draft revision after the restore.
    pub revision: i64,
    /// The `restore` checkpoint of the replaced draft.
    pub restore_checkpoint: Checkpoint,
    /// What the restore changed.
    pub changes: FilesChanged,
}

/// One file of a diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileDiff {
    /// The path.
    pub path: String,
    /// `added`, `modified` or `deleted`.
    pub change: String,
    /// Whether either side is not UTF-8 text (then `diff` is empty).
    pub binary: bool,
    /// Unified diff text.
    pub diff: String,
}

/// `GET …/checkpoints/{id}/diff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointDiff {
    /// The checkpoint.
    pub from: String,
    /// What it is compared with: a checkpoint id or `current`.
    pub against: String,
    /// Files that differ, by path.
    pub files: Vec<FileDiff>,
}

/// `GET …/chat-sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatSessionDetail {
    /// The session.
    #[serde(flatten)]
    pub session: ChatSession,
    /// Its messages, oldest first.
    pub messages: Vec<ChatMessage>,
}

/// `GET …/chat-sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatSessionList {
    /// The caller's sessions on the app, most recent first.
    pub sessions: Vec<ChatSession>,
}
