//! One tool call of the native loop: its `tool.started` and `tool.completed`/`tool.failed`
//! events around the run, and the result part that goes back to the model.

use std::time::Instant;

use draftsmith_core::{EventBody, EventError};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::prompt::{bound, named_paths};
use crate::engine::{EventSink, Job};
use crate::model::{Part, ToolCall};

/// Runs one tool call with its events; `None` when the sink closed.
pub(super) async fn tool_round(
    job: &Job,
    cancel: &CancellationToken,
    call: &ToolCall,
    sink: &dyn EventSink,
) -> Option<Part> {
    let input: Value = serde_json::from_str(&call.arguments)
        .unwrap_or_else(|_| Value::String(call.arguments.clone()));
    let named = named_paths(&input);
    let started = EventBody::ToolStarted {
        tool_call_id: call.id.clone(),
        tool: call.name.clone(),
        input: bound(&input),
        paths: named.clone(),
    };
    sink.emit(started, Vec::new()).await.ok()?;
    let clock = Instant::now();
    let outcome = job
        .tools
        .run_tool(&call.name, &call.arguments, cancel.clone())
        .await;
    let ms = clock.elapsed().as_millis() as u64;
    let mut paths = outcome.paths.clone();
    if paths.is_empty() {
        paths = named;
    }
    let event = match &outcome.error {
        None => EventBody::ToolCompleted {
            tool_call_id: call.id.clone(),
            tool: call.name.clone(),
            output: bound(&outcome.output),
            paths,
            ms,
        },
        Some(error) => EventBody::ToolFailed {
            tool_call_id: call.id.clone(),
            tool: call.name.clone(),
            error: EventError {
                code: error.code,
                message: error.message.clone(),
                field: error.field.clone(),
                details: None,
            },
            paths,
            ms,
        },
    };
    sink.emit(event, Vec::new()).await.ok()?;
    Some(Part::ToolResult {
        call_id: call.id.clone(),
        content: outcome.output.to_string(),
        is_error: outcome.error.is_some(),
    })
}
