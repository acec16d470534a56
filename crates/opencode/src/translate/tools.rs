//! Tool parts → `tool.started` / `tool.completed` / `tool.failed`, each once per call
//! whatever order or repetition the states arrive in, and the bookkeeping of edit-class
//! failures that no later edit of the same file repaired.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use draftsmith_core::{ErrorCode, EventBody, EventError};
use draftsmith_engine::native::{bound, named_paths};
use serde_json::{Value, json};

use crate::wire::{Part, ToolState};

/// OpenCode tools that change files; a failure of one must be followed by a successful one.
pub const EDIT_TOOLS: &[&str] = &["edit", "write", "patch", "apply_patch", "multiedit"];

/// The key of an edit failure that names no file: any later successful edit repairs it.
const ANY_FILE: &str = "*";

/// Longest error text kept in an event.
const ERROR_CHARS: usize = 2_000;

#[derive(Debug, Default)]
struct Call {
    started: bool,
    finished: bool,
}

/// Every tool call of a run.
#[derive(Debug, Default)]
pub struct ToolCalls {
    calls: HashMap<String, Call>,
    /// Unrepaired edit failures: file (relative to the workspace, or `*`) → error.
    open_edit_failures: BTreeMap<String, String>,
}

impl ToolCalls {
    /// The events a tool part's new state calls for.
    pub fn update(&mut self, part: &Part, workspace: &Path) -> Vec<EventBody> {
        let Some(state) = &part.state else {
            return Vec::new();
        };
        let call = self.calls.entry(part.id.clone()).or_default();
        let tool_call_id = part.call_id.clone().unwrap_or_else(|| part.id.clone());
        let (tool, invalid) = meant_tool(part, &state.input);
        let input = &state.input;
        let paths = relative_paths(input, workspace);
        let has_input = input.as_object().is_some_and(|m| !m.is_empty());
        let mut events = Vec::new();
        let status = state.status.as_str();
        let settled = matches!(status, "completed" | "error");
        if !call.started && (matches!(status, "running") || settled || has_input) {
            call.started = true;
            events.push(EventBody::ToolStarted {
                tool_call_id: tool_call_id.clone(),
                tool: tool.clone(),
                input: bound(input),
                paths: paths.clone(),
            });
        }
        if call.finished || !settled {
            return events;
        }
        call.finished = true;
        let settled = Settled {
            tool_call_id,
            tool,
            paths,
            ms: duration_ms(state),
        };
        events.push(self.settle(settled, state, invalid));
        events
    }

    /// Whether every call seen reached its end.
    pub fn all_settled(&self) -> bool {
        self.calls.values().all(|call| call.finished)
    }

    /// The `tool.completed` or `tool.failed` of a call that reached its end, noting edits.
    fn settle(&mut self, call: Settled, state: &ToolState, invalid: bool) -> EventBody {
        let Settled {
            tool_call_id,
            tool,
            paths,
            ms,
        } = call;
        let is_edit = EDIT_TOOLS.contains(&tool.as_str());
        match failure(state, invalid) {
            None => {
                if is_edit {
                    self.edit_succeeded(&paths);
                }
                let output = state.output.clone().unwrap_or_default();
                EventBody::ToolCompleted {
                    tool_call_id,
                    tool,
                    output: bound(&Value::String(output)),
                    paths,
                    ms,
                }
            }
            Some((code, message)) => {
                let message: String = message.chars().take(ERROR_CHARS).collect();
                if is_edit {
                    self.edit_failed(&paths, &message);
                }
                EventBody::ToolFailed {
                    tool_call_id,
                    tool,
                    error: EventError {
                        code,
                        message,
                        field: None,
                        details: None,
                    },
                    paths,
                    ms,
                }
            }
        }
    }

    fn edit_failed(&mut self, paths: &[String], message: &str) {
        if paths.is_empty() {
            self.open_edit_failures
                .insert(ANY_FILE.to_owned(), message.to_owned());
        }
        for path in paths {
            self.open_edit_failures
                .insert(path.clone(), message.to_owned());
        }
    }

    fn edit_succeeded(&mut self, paths: &[String]) {
        if paths.is_empty() {
            self.open_edit_failures.clear();
            return;
        }
        self.open_edit_failures.remove(ANY_FILE);
        for path in paths {
            self.open_edit_failures.remove(path);
        }
    }

    /// The run's error when an edit failed and no later edit of that file succeeded.
    pub fn unrecovered_edit(&self) -> Option<EventError> {
        let (path, message) = self.open_edit_failures.iter().next()?;
        let failures: Vec<Value> = self
            .open_edit_failures
            .iter()
            .map(|(path, error)| json!({"path": path, "error": error}))
            .collect();
        Some(EventError {
            code: ErrorCode::CodingAgentToolFailed,
            message: format!("an edit of {path} failed and no later edit repaired it: {message}"),
            field: None,
            details: Some(json!({ "unrecovered_edits": failures })),
        })
    }
}

/// What every event of a settled call names.
struct Settled {
    tool_call_id: String,
    tool: String,
    paths: Vec<String>,
    ms: u64,
}

/// The tool the model meant, and whether OpenCode ran its `invalid` tool instead: it answers
/// unparseable arguments that way, reported here as the failed call of the meant tool.
fn meant_tool(part: &Part, input: &Value) -> (String, bool) {
    let tool = part.tool.clone().unwrap_or_else(|| "tool".into());
    let invalid = tool == "invalid";
    if invalid && let Some(meant) = input.get("tool").and_then(Value::as_str) {
        return (meant.to_owned(), invalid);
    }
    (tool, invalid)
}

/// How long the call ran, from OpenCode's timestamps (0 when unknown).
fn duration_ms(state: &ToolState) -> u64 {
    state
        .time
        .as_ref()
        .and_then(|t| Some(t.end?.saturating_sub(t.start?)))
        .unwrap_or_default()
}

/// The error code and message of a settled call that failed: an `error` state, or the
/// `invalid` tool standing in for unparseable arguments.
fn failure(state: &ToolState, invalid: bool) -> Option<(ErrorCode, String)> {
    match (state.status.as_str(), invalid) {
        ("error", _) => Some((
            ErrorCode::CodingAgentToolFailed,
            state.error.clone().unwrap_or_default(),
        )),
        (_, true) => Some((
            ErrorCode::CodingAgentToolInputInvalid,
            state.output.clone().unwrap_or_default(),
        )),
        _ => None,
    }
}

/// The paths a tool input names, relative to the workspace when they point inside it
/// (OpenCode's tools take absolute paths).
fn relative_paths(input: &Value, workspace: &Path) -> Vec<String> {
    named_paths(input)
        .into_iter()
        .map(|path| {
            Path::new(&path)
                .strip_prefix(workspace)
                .map(|p| p.display().to_string())
                .unwrap_or(path)
        })
        .collect()
}
