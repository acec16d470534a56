//! The run event stream (SPEC §3): one envelope per event, its type and payload typed here
//! so the server, the CLI, the UI and the tests agree on every field.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::{AppId, ChatSessionId, EngineKind, ErrorCode, RunId, Timestamp};

/// One event of a run, as persisted and as sent over SSE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunEvent {
    /// The event's type and payload.
    #[serde(flatten)]
    #[schema(inline)]
    pub body: EventBody,
    /// The run.
    pub run_id: RunId,
    /// Its app.
    pub app_id: AppId,
    /// Position in the run's log: 1, 2, 3… with no gaps.
    pub seq: i64,
    /// When it was recorded.
    #[schema(value_type = String, format = DateTime)]
    pub ts: Timestamp,
    /// The lifecycle stage it belongs to.
    pub stage: Stage,
    /// Non-fatal observations (retries, truncations, skipped items).
    #[serde(default)]
    pub diagnostics: Vec<Diagnostic>,
}

/// Lifecycle stage of an event, for grouping in a UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Acceptance, start and end of the run.
    Run,
    /// Workspace provisioning.
    Sandbox,
    /// Model output.
    Assistant,
    /// Tool calls.
    Tool,
    /// Checkpoints.
    Checkpoint,
    /// Template verification.
    Verification,
    /// Workspace → draft sync.
    Sync,
}

/// A non-fatal observation attached to an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Diagnostic {
    /// Stable short code, e.g. `model_retry`.
    pub code: String,
    /// What happened.
    pub message: String,
}

/// An error as carried by `run.failed` and `tool.failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventError {
    /// Stable code.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
    /// The input field at fault, for tool input errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Structured context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub details: Option<Value>,
}

/// Every event type with its payload; `event` is the SSE event name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", content = "payload")]
pub enum EventBody {
    /// The run was persisted and will start.
    #[serde(rename = "run.accepted")]
    RunAccepted {
        /// Engine it runs on.
        engine: EngineKind,
        /// Model the caller asked for (`auto` when omitted).
        requested_model_id: String,
        /// Model it is pinned to.
        resolved_model_id: String,
        /// Its chat session.
        chat_session_id: ChatSessionId,
    },
    /// Work began.
    #[serde(rename = "run.started")]
    RunStarted {
        /// Where it works.
        sandbox_id: String,
    },
    /// The workspace is ready.
    #[serde(rename = "sandbox.ready")]
    SandboxReady {
        /// Its id.
        sandbox_id: String,
        /// Whether a warm sandbox was reused.
        reused: bool,
        /// Provisioning time.
        ms: u64,
    },
    /// Answer text as it streams; never reasoning.
    #[serde(rename = "assistant.delta")]
    AssistantDelta {
        /// New text.
        delta: String,
        /// The message it belongs to.
        message_id: String,
    },
    /// The whole answer text of one model turn.
    #[serde(rename = "assistant.message")]
    AssistantMessage {
        /// The message.
        message_id: String,
        /// Its full text.
        text: String,
    },
    /// A message the person sent to the run while it worked (steering); the engine
    /// takes it at its next model turn.
    #[serde(rename = "user.message")]
    UserMessage {
        /// The chat message it was saved as.
        message_id: String,
        /// Its text.
        text: String,
    },
    /// A tool call began.
    #[serde(rename = "tool.started")]
    ToolStarted {
        /// Call id.
        tool_call_id: String,
        /// Tool name.
        tool: String,
        /// Input (bounded).
        #[schema(value_type = Object)]
        input: Value,
        /// Paths it names.
        paths: Vec<String>,
    },
    /// A tool call succeeded.
    #[serde(rename = "tool.completed")]
    ToolCompleted {
        /// Call id.
        tool_call_id: String,
        /// Tool name.
        tool: String,
        /// Output (bounded).
        #[schema(value_type = Object)]
        output: Value,
        /// Paths it touched.
        paths: Vec<String>,
        /// Duration.
        ms: u64,
    },
    /// A tool call failed (bad input or a failing tool); the run goes on.
    #[serde(rename = "tool.failed")]
    ToolFailed {
        /// Call id.
        tool_call_id: String,
        /// Tool name.
        tool: String,
        /// What went wrong.
        error: EventError,
        /// Paths it named.
        paths: Vec<String>,
        /// Duration.
        ms: u64,
    },
    /// A checkpoint was taken.
    #[serde(rename = "checkpoint.created")]
    CheckpointCreated {
        /// Its id.
        checkpoint_id: String,
        /// `pre_run`, `post_run`, `rejected`, …
        kind: crate::checkpoint::CheckpointKind,
        /// Draft revision it points at.
        revision: i64,
    },
    /// A verification command began.
    #[serde(rename = "verification.started")]
    VerificationStarted {
        /// The command.
        command: String,
    },
    /// A verification command passed.
    #[serde(rename = "verification.completed")]
    VerificationCompleted(VerificationResult),
    /// A verification command failed.
    #[serde(rename = "verification.failed")]
    VerificationFailed(VerificationResult),
    /// The workspace's changes became a draft revision.
    #[serde(rename = "draft.synced")]
    DraftSynced {
        /// The new revision.
        revision: i64,
        /// Created paths.
        added: Vec<String>,
        /// Changed paths.
        modified: Vec<String>,
        /// Removed paths.
        deleted: Vec<String>,
    },
    /// The earlier part of the run's conversation was replaced by a summary the model wrote,
    /// to stay inside its context window; later steps send the summary instead.
    #[serde(rename = "context.compacted")]
    ContextCompacted {
        /// The summary that now stands for the replaced messages.
        summary: String,
        /// How many conversation messages it replaced.
        replaced_messages: usize,
        /// Their estimated size in tokens.
        replaced_tokens: u64,
        /// Which compaction of the run this is, from 1.
        compaction: u32,
    },
    /// Terminal: the run finished.
    #[serde(rename = "run.completed")]
    RunCompleted {
        /// Draft revision after the run.
        revision: i64,
        /// The final answer.
        summary: String,
        /// Tokens and cost of the run's model calls (filled in by the store as the run ends).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<crate::UsageTotals>,
    },
    /// Terminal: the run ended in an error.
    #[serde(rename = "run.failed")]
    RunFailed {
        /// What went wrong.
        error: EventError,
        /// Tokens and cost of the run's model calls (filled in by the store as the run ends).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<crate::UsageTotals>,
    },
    /// Terminal: a user cancelled the run.
    #[serde(rename = "run.cancelled")]
    RunCancelled {
        /// Who.
        by: String,
        /// Tokens and cost of the run's model calls (filled in by the store as the run ends).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<crate::UsageTotals>,
    },
    /// Terminal: a limit stopped the run.
    #[serde(rename = "run.paused")]
    RunPaused {
        /// Why, e.g. `step_limit`.
        reason: String,
        /// Tokens and cost of the run's model calls (filled in by the store as the run ends).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<crate::UsageTotals>,
    },
}

/// Outcome of one verification command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VerificationResult {
    /// The command.
    pub command: String,
    /// Its exit code (`None` when killed).
    pub exit_code: Option<i32>,
    /// Bounded tail of its output.
    pub output: String,
    /// Duration.
    pub ms: u64,
}

impl EventBody {
    /// `draft.synced` for a draft write that made `revision` with `changes`.
    pub fn draft_synced(revision: i64, changes: crate::checkpoint::FilesChanged) -> Self {
        let crate::checkpoint::FilesChanged {
            added,
            modified,
            deleted,
        } = changes;
        Self::DraftSynced {
            revision,
            added,
            modified,
            deleted,
        }
    }

    /// Every event name, in the order of a run's life.
    pub const TYPES: [&'static str; 19] = [
        "run.accepted",
        "run.started",
        "sandbox.ready",
        "assistant.delta",
        "assistant.message",
        "user.message",
        "tool.started",
        "tool.completed",
        "tool.failed",
        "checkpoint.created",
        "verification.started",
        "verification.completed",
        "verification.failed",
        "draft.synced",
        "context.compacted",
        "run.completed",
        "run.failed",
        "run.cancelled",
        "run.paused",
    ];

    /// The status an event named `event_type` moves its run to, when it is terminal.
    pub fn terminal_status_of(event_type: &str) -> Option<crate::RunStatus> {
        use crate::RunStatus;
        match event_type {
            "run.completed" => Some(RunStatus::Completed),
            "run.failed" => Some(RunStatus::Failed),
            "run.cancelled" => Some(RunStatus::Cancelled),
            "run.paused" => Some(RunStatus::Paused),
            _ => None,
        }
    }

    /// A terminal event's `usage`, when it carries one.
    pub fn usage(&self) -> Option<&crate::UsageTotals> {
        match self {
            Self::RunCompleted { usage, .. }
            | Self::RunFailed { usage, .. }
            | Self::RunCancelled { usage, .. }
            | Self::RunPaused { usage, .. } => usage.as_ref(),
            _ => None,
        }
    }

    /// Sets a terminal event's `usage`; other events have none.
    pub fn set_usage(&mut self, totals: crate::UsageTotals) {
        match self {
            Self::RunCompleted { usage, .. }
            | Self::RunFailed { usage, .. }
            | Self::RunCancelled { usage, .. }
            | Self::RunPaused { usage, .. } => *usage = Some(totals),
            _ => {}
        }
    }

    /// The SSE event name, e.g. `tool.started`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::RunAccepted { .. } => "run.accepted",
            Self::RunStarted { .. } => "run.started",
            Self::SandboxReady { .. } => "sandbox.ready",
            Self::AssistantDelta { .. } => "assistant.delta",
            Self::AssistantMessage { .. } => "assistant.message",
            Self::UserMessage { .. } => "user.message",
            Self::ToolStarted { .. } => "tool.started",
            Self::ToolCompleted { .. } => "tool.completed",
            Self::ToolFailed { .. } => "tool.failed",
            Self::CheckpointCreated { .. } => "checkpoint.created",
            Self::VerificationStarted { .. } => "verification.started",
            Self::VerificationCompleted(_) => "verification.completed",
            Self::VerificationFailed(_) => "verification.failed",
            Self::DraftSynced { .. } => "draft.synced",
            Self::ContextCompacted { .. } => "context.compacted",
            Self::RunCompleted { .. } => "run.completed",
            Self::RunFailed { .. } => "run.failed",
            Self::RunCancelled { .. } => "run.cancelled",
            Self::RunPaused { .. } => "run.paused",
        }
    }

    /// The stage this event belongs to.
    pub fn stage(&self) -> Stage {
        match self {
            Self::RunAccepted { .. }
            | Self::RunStarted { .. }
            | Self::RunCompleted { .. }
            | Self::RunFailed { .. }
            | Self::RunCancelled { .. }
            | Self::RunPaused { .. }
            | Self::UserMessage { .. } => Stage::Run,
            Self::SandboxReady { .. } => Stage::Sandbox,
            Self::AssistantDelta { .. }
            | Self::AssistantMessage { .. }
            | Self::ContextCompacted { .. } => Stage::Assistant,
            Self::ToolStarted { .. } | Self::ToolCompleted { .. } | Self::ToolFailed { .. } => {
                Stage::Tool
            }
            Self::CheckpointCreated { .. } => Stage::Checkpoint,
            Self::VerificationStarted { .. }
            | Self::VerificationCompleted(_)
            | Self::VerificationFailed(_) => Stage::Verification,
            Self::DraftSynced { .. } => Stage::Sync,
        }
    }

    /// The status a terminal event moves its run to; `None` for the others.
    pub fn terminal_status(&self) -> Option<crate::RunStatus> {
        Self::terminal_status_of(self.event_type())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn envelope_has_the_spec_shape() {
        let event = RunEvent {
            body: EventBody::ToolStarted {
                tool_call_id: "c1".into(),
                tool: "write".into(),
                input: serde_json::json!({"path": "a.txt"}),
                paths: vec!["a.txt".into()],
            },
            run_id: RunId(uuid::Uuid::nil()),
            app_id: AppId(uuid::Uuid::nil()),
            seq: 7,
            ts: Timestamp::from_micros(0),
            stage: Stage::Tool,
            diagnostics: vec![],
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "tool.started");
        assert_eq!(json["payload"]["tool_call_id"], "c1");
        assert_eq!(json["stage"], "tool");
        assert_eq!(json["seq"], 7);
        let back: RunEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.body.event_type(), "tool.started");
    }

    /// Every string an `event` property may take, anywhere in `schema`.
    fn event_names(schema: &Value, into: &mut Vec<String>) {
        match schema {
            Value::Object(map) => {
                if let Some(names) = map
                    .get("properties")
                    .and_then(|p| p.get("event"))
                    .and_then(|e| e.get("enum"))
                    .and_then(Value::as_array)
                {
                    into.extend(names.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                map.values().for_each(|v| event_names(v, into));
            }
            Value::Array(items) => items.iter().for_each(|v| event_names(v, into)),
            _ => {}
        }
    }

    #[test]
    fn the_list_of_types_is_the_schema_s_and_terminal_ones_end_runs() {
        let schema = serde_json::to_value(<EventBody as utoipa::PartialSchema>::schema()).unwrap();
        let mut found = Vec::new();
        event_names(&schema, &mut found);
        found.sort();
        found.dedup();
        let mut listed: Vec<String> = EventBody::TYPES.iter().map(|t| (*t).to_owned()).collect();
        listed.sort();
        assert_eq!(found, listed);
        let terminal: Vec<_> = EventBody::TYPES
            .iter()
            .filter_map(|t| EventBody::terminal_status_of(t))
            .collect();
        let mut ends: Vec<_> = crate::RunStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal.len(), ends.len());
        ends.retain(|s| !terminal.contains(s));
        assert!(ends.is_empty(), "no event ends a run as {ends:?}");
    }
}
