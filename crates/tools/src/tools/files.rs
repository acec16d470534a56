//! `write`, `delete` and `rename`: whole-entry changes, each behind the path policy.

use std::fs;
use std::io::ErrorKind;

use serde_json::json;

use super::Done;
use crate::beneath;
use crate::context::ToolContext;
use crate::error::ToolError;
use crate::fsio::{changed_on_the_way, create_parents, io_failed, remove_dirs, write_atomic};
use crate::input::{DeleteInput, RenameInput, WriteInput};
use crate::policy::{canonical_root, parse_lexical, resolve_for_entry, resolve_for_write};

/// Creates or replaces a file with `input.content`.
pub(crate) fn write(ctx: &ToolContext, input: WriteInput) -> Result<Done, ToolError> {
    if input.content.len() > ctx.limits.max_file_bytes {
        return Err(ToolError::input(
            Some("content"),
            format!(
                "content is {} bytes; files are limited to {} bytes",
                input.content.len(),
                ctx.limits.max_file_bytes
            ),
        ));
    }
    let shown = parse_lexical(&input.path)?.into_string();
    let root = canonical_root(&ctx.workspace)?;
    let path = resolve_for_write(&root, &input.path)?;
    let created = match path.parent() {
        Some(parent) => create_parents(&root, parent)?,
        None => Vec::new(),
    };
    let existed = fs::symlink_metadata(&path).is_ok();
    if let Err(e) = write_atomic(&root, &path, &shown, input.content.as_bytes()) {
        remove_dirs(&created);
        return Err(e);
    }
    Ok(Done {
        result: json!({"path": shown, "bytes": input.content.len(), "created": !existed}),
        paths: vec![shown],
    })
}

/// Deletes a file, or a directory with its contents (symlinks inside are removed, not followed).
pub(crate) fn delete(ctx: &ToolContext, input: DeleteInput) -> Result<Done, ToolError> {
    let shown = parse_lexical(&input.path)?.into_string();
    let root = canonical_root(&ctx.workspace)?;
    let path = resolve_for_entry(&root, &input.path)?;
    let was_dir = beneath::remove_in(&root, &path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => ToolError::failed(format!("{shown} does not exist")),
        _ if beneath::is_gone(&e) => changed_on_the_way(&shown, &e),
        _ => io_failed("delete", &shown, &e),
    })?;
    let kind = if was_dir { "directory" } else { "file" };
    Ok(Done {
        result: json!({"path": shown, "deleted": kind}),
        paths: vec![shown],
    })
}

/// Moves an entry to a path that does not exist yet.
pub(crate) fn rename(ctx: &ToolContext, input: RenameInput) -> Result<Done, ToolError> {
    let from_shown = parse_lexical(&input.from_path)
        .map_err(|e| e.with_field("from_path"))?
        .into_string();
    let to_shown = parse_lexical(&input.to_path)
        .map_err(|e| e.with_field("to_path"))?
        .into_string();
    let root = canonical_root(&ctx.workspace)?;
    let from = resolve_for_entry(&root, &input.from_path).map_err(|e| e.with_field("from_path"))?;
    let to = resolve_for_write(&root, &input.to_path).map_err(|e| e.with_field("to_path"))?;
    match fs::symlink_metadata(&from) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(ToolError::failed(format!("{from_shown} does not exist")));
        }
        Err(e) => return Err(io_failed("inspect", &from_shown, &e)),
    }
    if fs::symlink_metadata(&to).is_ok() {
        return Err(ToolError::failed(format!(
            "{to_shown} already exists; delete it first or pick another name"
        )));
    }
    if to.starts_with(&from) {
        return Err(ToolError::failed(format!(
            "cannot move {from_shown} into itself"
        )));
    }
    let created = match to.parent() {
        Some(parent) => create_parents(&root, parent)?,
        None => Vec::new(),
    };
    if let Err(e) = beneath::rename_in(&root, &from, &to) {
        remove_dirs(&created);
        return Err(io_failed("rename", &from_shown, &e));
    }
    Ok(Done {
        result: json!({"from_path": from_shown, "to_path": to_shown}),
        paths: vec![from_shown, to_shown],
    })
}
