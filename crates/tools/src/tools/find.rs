//! `glob`: files whose workspace-relative path matches a glob pattern.

use globset::{GlobBuilder, GlobMatcher};
use serde_json::json;

use super::Done;
use super::walk::Walk;
use crate::context::ToolContext;
use crate::error::ToolError;
use crate::input::GlobInput;
use crate::policy::{canonical_root, resolve_dir};

/// Compiles a glob the way `glob` and `search` use it ("*" may cross "/").
pub(crate) fn compile(pattern: &str, field: &str) -> Result<GlobMatcher, ToolError> {
    let pattern = pattern.trim_start_matches("./");
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| ToolError::input(Some(field), format!("invalid glob: {e}")))
}

/// Finds the files matching `input.pattern`.
pub(crate) fn run(ctx: &ToolContext, input: GlobInput) -> Result<Done, ToolError> {
    let matcher = compile(&input.pattern, "pattern")?;
    let root = canonical_root(&ctx.workspace)?;
    let dir = resolve_dir(&root, input.path.as_deref())?;
    let max = ctx.limits.max_list_entries;
    let mut files = Vec::new();
    let mut truncated = false;
    Walk::new(&root, &dir, None).run(&ctx.cancel, |entry, rel| {
        if !entry.is_file() || !matcher.is_match(rel) {
            return true;
        }
        if files.len() >= max {
            truncated = true;
            return false;
        }
        files.push(rel.to_owned());
        true
    })?;
    Ok(Done {
        result: json!({"files": files, "truncated": truncated}),
        paths: Vec::new(),
    })
}
