//! `list`: a directory tree a few levels deep, so the model can find its way around.

use serde_json::json;

use super::Done;
use super::walk::Walk;
use crate::context::ToolContext;
use crate::error::ToolError;
use crate::input::{DEFAULT_LIST_DEPTH, ListInput, MAX_LIST_DEPTH};
use crate::policy::{canonical_root, relative, resolve_dir};

/// Lists the entries below `input.path`.
pub(crate) fn run(ctx: &ToolContext, input: ListInput) -> Result<Done, ToolError> {
    let root = canonical_root(&ctx.workspace)?;
    let dir = resolve_dir(&root, input.path.as_deref())?;
    if !dir.is_dir() {
        let shown = input.path.unwrap_or_default();
        return Err(ToolError::failed(format!(
            "{shown} is not a directory (or does not exist)"
        )));
    }
    let depth = input
        .depth
        .unwrap_or(DEFAULT_LIST_DEPTH)
        .min(MAX_LIST_DEPTH) as usize;
    let max = ctx.limits.max_list_entries;
    let mut entries = Vec::new();
    let mut truncated = false;
    Walk::new(&root, &dir, Some(depth)).run(&ctx.cancel, |entry, rel| {
        if entries.len() >= max {
            truncated = true;
            return false;
        }
        entries.push(if entry.is_dir() {
            format!("{rel}/")
        } else {
            rel.to_owned()
        });
        true
    })?;
    let shown = match relative(&root, &dir) {
        s if s.is_empty() => ".".to_owned(),
        s => s,
    };
    Ok(Done {
        result: json!({"path": shown, "entries": entries, "truncated": truncated}),
        paths: vec![shown],
    })
}
