//! `run_tool`: finds the tool, validates the model's arguments against it, runs it, and wraps
//! the result in the envelope the model receives. Validation failures never run anything.

use serde::de::DeserializeOwned;

use crate::context::ToolContext;
use crate::error::{ToolError, ToolOutcome};
use crate::spec::{self, ToolSpec};
use crate::tools::{self, Done};
use crate::validate::parse_input;

/// Runs the tool the model called `function_name` with its raw `arguments` JSON text.
pub async fn run_tool(ctx: &ToolContext, function_name: &str, arguments: &str) -> ToolOutcome {
    let Some(spec) = spec::find(function_name) else {
        let known: Vec<&str> = spec::tool_specs().iter().map(|s| s.function_name).collect();
        return ToolOutcome::failure(
            ToolError::input(
                Some("name"),
                format!(
                    "there is no tool {function_name:?}; the tools are {}",
                    known.join(", ")
                ),
            ),
            Vec::new(),
        );
    };
    let result = match spec.function_name {
        "list" => blocking(ctx, spec, arguments, tools::list::run).await,
        "read" => blocking(ctx, spec, arguments, tools::read::run).await,
        "search" => blocking(ctx, spec, arguments, tools::search::run).await,
        "glob" => blocking(ctx, spec, arguments, tools::find::run).await,
        "write" => blocking(ctx, spec, arguments, tools::files::write).await,
        "apply_patch" => blocking(ctx, spec, arguments, crate::patch::run).await,
        "delete" => blocking(ctx, spec, arguments, tools::files::delete).await,
        "rename" => blocking(ctx, spec, arguments, tools::files::rename).await,
        "coding_agent_get_agent_integration_contract" => {
            blocking(ctx, spec, arguments, tools::contract::get).await
        }
        "coding_agent_describe_selected_agent_contract" => {
            blocking(ctx, spec, arguments, tools::contract::describe).await
        }
        "run_command" => match parse_input(&spec.input_schema, arguments) {
            Ok(input) if !ctx.cancel.is_cancelled() => tools::run_command::run(ctx, input).await,
            Ok(_) => Err(cancelled()),
            Err(e) => Err(e),
        },
        other => Err(ToolError::failed(format!(
            "the tool {other} has no implementation"
        ))),
    };
    match result {
        Ok(Done { result, paths }) => ToolOutcome::success(result, paths),
        Err(error) => ToolOutcome::failure(error, Vec::new()),
    }
}

/// Whether the tool the model called `function_name` runs commands through the context's
/// [`crate::CommandRunner`]; every other tool only touches files, so its context may carry
/// [`crate::NoCommands`] instead of a confined runner that is costly to set up.
pub fn runs_commands(function_name: &str) -> bool {
    function_name == "run_command"
}

/// Validates, then runs a file-system tool on the blocking pool.
async fn blocking<T, F>(
    ctx: &ToolContext,
    spec: &ToolSpec,
    arguments: &str,
    tool: F,
) -> Result<Done, ToolError>
where
    T: DeserializeOwned + Send + 'static,
    F: FnOnce(&ToolContext, T) -> Result<Done, ToolError> + Send + 'static,
{
    let input: T = parse_input(&spec.input_schema, arguments)?;
    if ctx.cancel.is_cancelled() {
        return Err(cancelled());
    }
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || tool(&ctx, input))
        .await
        .map_err(|e| ToolError::failed(format!("the tool stopped unexpectedly: {e}")))?
}

fn cancelled() -> ToolError {
    ToolError::failed("the run was cancelled")
}
