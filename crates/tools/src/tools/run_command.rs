//! `run_command`: a shell command in the workspace through the context's command runner.

use serde_json::json;

use super::Done;
use crate::command::CommandRequest;
use crate::context::ToolContext;
use crate::error::ToolError;
use crate::input::RunCommandInput;

/// Runs `input.command`; a non-zero exit is a result the model reads, a timeout or a cancel a failure.
pub(crate) async fn run(ctx: &ToolContext, input: RunCommandInput) -> Result<Done, ToolError> {
    if input.command.trim().is_empty() {
        return Err(ToolError::input(Some("command"), "`command` is blank"));
    }
    let limit = ctx.limits.command_timeout;
    let timeout = input
        .timeout_ms
        .map(std::time::Duration::from_millis)
        .map_or(limit, |t| t.min(limit));
    let request = CommandRequest {
        command: input.command,
        cwd: ctx.workspace.clone(),
        timeout,
        max_output_bytes: ctx.limits.max_output_bytes,
        env: Vec::new(),
    };
    let out = ctx.commands.run(request, ctx.cancel.clone()).await?;
    if out.timed_out {
        return Err(ToolError::failed(format!(
            "the command was killed after {} ms (its time limit); output before that:\n{}",
            timeout.as_millis(),
            out.output
        )));
    }
    if out.cancelled {
        return Err(ToolError::failed(
            "the run was cancelled; the command was killed",
        ));
    }
    Ok(Done {
        result: json!({"exit_code": out.exit_code, "output": out.output, "ms": out.ms}),
        paths: Vec::new(),
    })
}
