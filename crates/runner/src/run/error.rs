//! How a run ends, and why a run fails: [`RunError`] is the one place a failure becomes a
//! wire code, message and details.

use draftsmith_core::api::MessageStatus;
use draftsmith_core::{EngineKind, ErrorCode, EventBody, EventError};
use draftsmith_sandbox::SandboxError;
use draftsmith_store::StoreError;
use serde_json::json;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    /// The sandbox could not be created, refreshed from the draft or seeded.
    #[error("{0}")]
    Provision(#[from] ProvisionError),
    /// The sandbox failed while the run's work was read back from it.
    #[error("{0}")]
    Sandbox(SandboxError),
    /// The chat's earlier turns could not be read.
    #[error("{0}")]
    History(StoreError),
    /// The run's engine is not installed here.
    #[error("the {} engine is not available", .0.as_str())]
    EngineUnavailable(EngineKind),
    /// The engine ended the work with an error of its own.
    #[error("{}", .0.message)]
    Engine(EventError),
    /// Verification still failed after the repair turns; the work was kept as `rejected`.
    #[error("`{command}` failed after {repairs} repair turn(s)")]
    Verification {
        /// The failing command.
        command: String,
        /// Its exit code, when it exited.
        exit_code: Option<i32>,
        /// Repair turns the agent had.
        repairs: usize,
        /// The `rejected` checkpoint holding the work, when there was work to keep.
        rejected: Option<String>,
    },
    /// The draft changed meanwhile in the same files.
    #[error("the draft changed meanwhile in the same files: {}", paths.join(", "))]
    Conflict {
        /// The contested paths.
        paths: Vec<String>,
        /// The `rejected` checkpoint holding the run's work, when it could be kept.
        rejected: Option<String>,
    },
    /// The landing's transaction failed.
    #[error("{0}")]
    Landing(StoreError),
    /// Cancelled without a user: the service is shutting down.
    #[error("the service stopped during the run")]
    Orphaned,
}

/// Why the sandbox could not be made ready; every cause is a sandbox failure on the wire.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProvisionError {
    /// Creating or refreshing the sandbox failed.
    #[error("{0}")]
    Sandbox(#[from] SandboxError),
    /// The draft could not be read.
    #[error("{0}")]
    Draft(#[from] StoreError),
    /// The agent contract could not be written where the contract tools read it.
    #[error("seeding the agent contract: {0}")]
    Contract(SandboxError),
    /// An attachment could not be written where the prompt asked (`into`).
    #[error("writing attachment to {path}: {error}")]
    Attachment {
        /// The draft path.
        path: String,
        /// Why.
        error: SandboxError,
    },
}

impl RunError {
    /// The stable code of this failure.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::Provision(_) => ErrorCode::CodingAgentSandboxFailed,
            // An oversize workspace keeps its own code, not a generic sandbox failure.
            Self::Sandbox(err) => match err.code() {
                ErrorCode::CodingAgentWorkspaceTooLarge => ErrorCode::CodingAgentWorkspaceTooLarge,
                _ => ErrorCode::CodingAgentSandboxFailed,
            },
            Self::History(_) | Self::Landing(_) => ErrorCode::Internal,
            Self::EngineUnavailable(_) => ErrorCode::CodingAgentOpencodeStartFailed,
            Self::Engine(error) => error.code,
            Self::Verification { .. } => ErrorCode::CodingAgentVerificationFailed,
            Self::Conflict { .. } => ErrorCode::CodingAgentRevisionConflict,
            Self::Orphaned => ErrorCode::CodingAgentRunOrphaned,
        }
    }

    /// The failure as the `run.failed` event carries it.
    pub(crate) fn to_event_error(&self) -> EventError {
        if let Self::Engine(error) = self {
            return error.clone();
        }
        EventError {
            code: self.code(),
            message: self.to_string(),
            field: None,
            details: self.details(),
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            Self::Sandbox(err) => {
                let details = err.to_body().error.details;
                (!details.is_empty()).then_some(serde_json::Value::Object(details))
            }
            Self::Verification {
                command,
                exit_code,
                rejected,
                ..
            } => Some(json!({
                "command": command,
                "exit_code": exit_code,
                "rejected_checkpoint_id": rejected,
            })),
            Self::Conflict {
                paths,
                rejected: Some(id),
            } => Some(json!({"paths": paths, "rejected_checkpoint_id": id})),
            _ => None,
        }
    }
}

/// How a run ends: its terminal event and the assistant message status it implies.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The agent answered (and its work passed verification).
    Completed {
        /// The last turn's answer.
        summary: String,
    },
    /// A limit stopped the work.
    Paused {
        /// e.g. `step_limit`.
        reason: String,
    },
    /// A person cancelled it.
    Cancelled {
        /// Who.
        by: String,
    },
    /// It failed.
    Failed(RunError),
}

impl From<RunError> for Ending {
    fn from(error: RunError) -> Self {
        Self::Failed(error)
    }
}

impl Ending {
    /// The status of the assistant's message: complete only when the run completed.
    pub(crate) fn message(&self) -> MessageStatus {
        match self {
            Self::Completed { .. } => MessageStatus::Complete,
            _ => MessageStatus::Partial,
        }
    }

    /// The terminal status, as the metrics label it.
    pub(crate) fn status(&self) -> &'static str {
        match self {
            Self::Completed { .. } => "completed",
            Self::Paused { .. } => "paused",
            Self::Cancelled { .. } => "cancelled",
            Self::Failed(_) => "failed",
        }
    }

    /// Whether the model's provider ended the run with an error.
    pub(crate) fn is_model_error(&self) -> bool {
        matches!(self, Self::Failed(RunError::Engine(e)) if e.code == ErrorCode::CodingAgentModelError)
    }

    /// Whether the run failed (its sandbox is stopped rather than kept warm).
    pub(crate) fn is_failure(&self) -> bool {
        matches!(self, Self::Failed(_))
    }

    /// The terminal event; a completed run's revision is filled in by its landing, every
    /// ending's usage by the store.
    pub(crate) fn body(&self) -> EventBody {
        match self {
            Self::Completed { summary } => EventBody::RunCompleted {
                revision: 0,
                summary: summary.clone(),
                usage: None,
            },
            Self::Paused { reason } => EventBody::RunPaused {
                reason: reason.clone(),
                usage: None,
            },
            Self::Cancelled { by } => EventBody::RunCancelled {
                by: by.clone(),
                usage: None,
            },
            Self::Failed(error) => EventBody::RunFailed {
                error: error.to_event_error(),
                usage: None,
            },
        }
    }
}
