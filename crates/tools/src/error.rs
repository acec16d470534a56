//! The failure every tool reports and the envelope the model receives, built in one place so
//! the agent loop, the event stream and the tests agree on its shape.

use draftsmith_core::ErrorCode;
use serde_json::{Map, Value, json};

/// Why a tool call failed, in the terms the model and the `tool.failed` event use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ToolError {
    /// `CODING_AGENT_TOOL_INPUT_INVALID`, `CODING_AGENT_TOOL_FAILED` or `CODING_AGENT_PATH_BLOCKED`.
    pub code: ErrorCode,
    /// What went wrong and, where possible, how to fix the call.
    pub message: String,
    /// The input field at fault, when one is.
    pub field: Option<String>,
}

impl ToolError {
    /// The input did not fit the tool's schema; nothing ran.
    pub fn input(field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::CodingAgentToolInputInvalid,
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    /// The tool ran and could not do what was asked.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::CodingAgentToolFailed,
            message: message.into(),
            field: None,
        }
    }

    /// The path policy refused a path; `field` names the input that carried it.
    pub fn blocked(field: &str, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::CodingAgentPathBlocked,
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }

    /// The same error attributed to another input field (a path checked on behalf of `to_path`).
    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// The `{"code", "message", "field"?}` object inside a failure envelope.
    pub fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code.as_str()));
        error.insert("message".into(), json!(self.message));
        if let Some(field) = &self.field {
            error.insert("field".into(), json!(field));
        }
        Value::Object(error)
    }
}

/// What one tool call produced: the exact JSON the model sees, plus what the loop records.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    /// `{"ok": true, ...result}` or `{"ok": false, "error": {"code", "message", "field"?}}`.
    pub output: Value,
    /// The failure, when `output` is a failure envelope.
    pub error: Option<ToolError>,
    /// Workspace-relative paths the call read or changed.
    pub paths: Vec<String>,
}

impl ToolOutcome {
    /// A success whose `result` fields are merged after `"ok": true`.
    pub fn success(result: Value, paths: Vec<String>) -> Self {
        let mut output = Map::new();
        output.insert("ok".into(), Value::Bool(true));
        if let Value::Object(fields) = result {
            output.extend(fields);
        }
        Self {
            output: Value::Object(output),
            error: None,
            paths,
        }
    }

    /// A failure envelope carrying `error`.
    pub fn failure(error: ToolError, paths: Vec<String>) -> Self {
        Self {
            output: json!({"ok": false, "error": error.to_json()}),
            error: Some(error),
            paths,
        }
    }

    /// Whether the call succeeded.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}
