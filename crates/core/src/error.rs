//! The stable error codes of SPEC §3, written once: HTTP errors, `run.failed` and tool
//! envelopes all name their failure with one of these.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A failure a client can act on; the string form never changes once published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No credentials, or credentials that match nothing.
    Unauthorized,
    /// Valid credentials without the role the route needs.
    Forbidden,
    /// The resource does not exist or is not visible to the caller.
    NotFound,
    /// The route exists but not for this HTTP method.
    MethodNotAllowed,
    /// A body, header or parameter failed validation; `details.field` names it.
    ValidationFailed,
    /// A body or file exceeded its size bound.
    PayloadTooLarge,
    /// 408: the request (its head or its body) did not arrive in time.
    RequestTimeout,
    /// 414: the request target is longer than the server reads.
    UriTooLong,
    /// 431: the request's header fields are too many or too large.
    HeadersTooLarge,
    /// 503: the server has no room for another connection right now; retry later.
    ServiceUnavailable,
    /// The app already has an active run; `details.run_id` names it.
    CodingAgentRunActive,
    /// The run has ended, so it takes no more messages; `details.status` says how it ended.
    CodingAgentRunNotActive,
    /// The requested model is unknown or its provider is not configured.
    CodingAgentModelUnavailable,
    /// The requested engine is disabled by policy.
    CodingAgentEngineUnavailable,
    /// The draft moved on since the revision the caller based its change on.
    CodingAgentRevisionConflict,
    /// A path is outside what the path policy allows.
    CodingAgentPathBlocked,
    /// A tool call's input failed its JSON Schema.
    CodingAgentToolInputInvalid,
    /// A tool ran and failed.
    CodingAgentToolFailed,
    /// The model provider answered with an error or a broken stream.
    CodingAgentModelError,
    /// The OpenCode server could not be started or seeded.
    CodingAgentOpencodeStartFailed,
    /// The sandbox could not be provisioned or used.
    CodingAgentSandboxFailed,
    /// The template's verification commands failed after the agent's edits.
    CodingAgentVerificationFailed,
    /// The process that owned the run died before the run ended.
    CodingAgentRunOrphaned,
    /// The sandbox's workspace is larger than its disk limit, so it is not synced;
    /// `details.bytes` and `details.limit_bytes` say by how much.
    CodingAgentWorkspaceTooLarge,
    /// A run's conversation cannot be made to fit the model's context window, even after
    /// eliding tool outputs and the allowed compactions; `details` has the numbers.
    CodingAgentContextExhausted,
    /// The run's attachments cannot be given to the chosen model (e.g. images to a model
    /// without vision); nothing was persisted.
    CodingAgentAttachmentUnsupported,
    /// 429: the user's spending budget for a period is spent; `details.budget` names it
    /// (`user_daily`, `user_monthly`) and `details.resets_at` says when it resets.
    CodingAgentBudgetExceeded,
    /// 429: too many requests or active runs for now; `Retry-After` says when to retry.
    RateLimited,
    /// Anything unexpected; the only code a 500 carries.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [ErrorCode; 29] = [
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::ValidationFailed,
        Self::PayloadTooLarge,
        Self::RequestTimeout,
        Self::UriTooLong,
        Self::HeadersTooLarge,
        Self::ServiceUnavailable,
        Self::CodingAgentRunActive,
        Self::CodingAgentRunNotActive,
        Self::CodingAgentModelUnavailable,
        Self::CodingAgentEngineUnavailable,
        Self::CodingAgentRevisionConflict,
        Self::CodingAgentPathBlocked,
        Self::CodingAgentToolInputInvalid,
        Self::CodingAgentToolFailed,
        Self::CodingAgentModelError,
        Self::CodingAgentOpencodeStartFailed,
        Self::CodingAgentSandboxFailed,
        Self::CodingAgentVerificationFailed,
        Self::CodingAgentRunOrphaned,
        Self::CodingAgentWorkspaceTooLarge,
        Self::CodingAgentContextExhausted,
        Self::CodingAgentAttachmentUnsupported,
        Self::CodingAgentBudgetExceeded,
        Self::RateLimited,
        Self::Internal,
    ];

    /// The wire spelling, e.g. `CODING_AGENT_RUN_ACTIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::UriTooLong => "URI_TOO_LONG",
            Self::HeadersTooLarge => "HEADERS_TOO_LARGE",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::CodingAgentRunActive => "CODING_AGENT_RUN_ACTIVE",
            Self::CodingAgentRunNotActive => "CODING_AGENT_RUN_NOT_ACTIVE",
            Self::CodingAgentModelUnavailable => "CODING_AGENT_MODEL_UNAVAILABLE",
            Self::CodingAgentEngineUnavailable => "CODING_AGENT_ENGINE_UNAVAILABLE",
            Self::CodingAgentRevisionConflict => "CODING_AGENT_REVISION_CONFLICT",
            Self::CodingAgentPathBlocked => "CODING_AGENT_PATH_BLOCKED",
            Self::CodingAgentToolInputInvalid => "CODING_AGENT_TOOL_INPUT_INVALID",
            Self::CodingAgentToolFailed => "CODING_AGENT_TOOL_FAILED",
            Self::CodingAgentModelError => "CODING_AGENT_MODEL_ERROR",
            Self::CodingAgentOpencodeStartFailed => "CODING_AGENT_OPENCODE_START_FAILED",
            Self::CodingAgentSandboxFailed => "CODING_AGENT_SANDBOX_FAILED",
            Self::CodingAgentVerificationFailed => "CODING_AGENT_VERIFICATION_FAILED",
            Self::CodingAgentRunOrphaned => "CODING_AGENT_RUN_ORPHANED",
            Self::CodingAgentWorkspaceTooLarge => "CODING_AGENT_WORKSPACE_TOO_LARGE",
            Self::CodingAgentContextExhausted => "CODING_AGENT_CONTEXT_EXHAUSTED",
            Self::CodingAgentAttachmentUnsupported => "CODING_AGENT_ATTACHMENT_UNSUPPORTED",
            Self::CodingAgentBudgetExceeded => "CODING_AGENT_BUDGET_EXCEEDED",
            Self::RateLimited => "RATE_LIMITED",
            Self::Internal => "INTERNAL",
        }
    }

    /// The HTTP status that carries this code when it ends a request.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::ValidationFailed
            | Self::CodingAgentModelUnavailable
            | Self::CodingAgentEngineUnavailable
            | Self::CodingAgentPathBlocked
            | Self::CodingAgentToolInputInvalid
            | Self::CodingAgentAttachmentUnsupported => 400,
            Self::PayloadTooLarge => 413,
            Self::RequestTimeout => 408,
            Self::UriTooLong => 414,
            Self::HeadersTooLarge => 431,
            Self::ServiceUnavailable => 503,
            Self::CodingAgentBudgetExceeded | Self::RateLimited => 429,
            Self::CodingAgentRunActive
            | Self::CodingAgentRunNotActive
            | Self::CodingAgentRevisionConflict => 409,
            Self::CodingAgentToolFailed
            | Self::CodingAgentModelError
            | Self::CodingAgentOpencodeStartFailed
            | Self::CodingAgentSandboxFailed
            | Self::CodingAgentVerificationFailed
            | Self::CodingAgentRunOrphaned
            | Self::CodingAgentWorkspaceTooLarge
            | Self::CodingAgentContextExhausted => 422,
            Self::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error envelope of SPEC §2: `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// What went wrong, in a stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// Stable, machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation; may change between versions.
    pub message: String,
    /// Structured context, e.g. `{"field": "name"}` or `{"run_id": "…"}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ErrorBody {
    /// Builds an envelope with empty details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
                details: serde_json::Map::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spelling_matches_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap_or_default();
            assert_eq!(json.as_str(), Some(code.as_str()));
        }
    }

    #[test]
    fn only_internal_is_a_500() {
        for code in ErrorCode::ALL {
            assert_eq!(
                code.http_status() == 500,
                code == ErrorCode::Internal,
                "{code}"
            );
        }
    }
}
