//! `apply_patch`: parse the patch, compute every new file in memory behind the path policy,
//! then write all of them or none.

mod commit;
mod parser;
mod plan;
mod report;
mod seek;
mod text;

use serde_json::json;

use crate::context::ToolContext;
use crate::error::ToolError;
use crate::input::ApplyPatchInput;
use crate::tools::Done;

pub use parser::{FileOp, Hunk, HunkLine, ParseError, Patch, parse_patch};
pub use seek::normalize;
pub use text::{HunkError, apply_hunks};

/// Applies `input.patch` to the workspace atomically.
pub(crate) fn run(ctx: &ToolContext, input: ApplyPatchInput) -> Result<Done, ToolError> {
    let patch = parse_patch(&input.patch)
        .map_err(|e| ToolError::input(Some("patch"), format!("the patch is malformed: {e}")))?;
    let mut plan = plan::Plan::new(&ctx.workspace, ctx.limits.max_file_bytes)?;
    let mut summary = Vec::new();
    for op in &patch.ops {
        if ctx.cancel.is_cancelled() {
            return Err(ToolError::failed(
                "the run was cancelled; nothing was changed",
            ));
        }
        summary.push(plan.apply(op)?);
    }
    let paths = plan.touched();
    let root = plan.root().to_path_buf();
    commit::commit(&root, plan.into_changes())?;
    Ok(Done {
        result: json!({"files": summary}),
        paths,
    })
}
