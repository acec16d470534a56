//! `search`: lines matching a regular expression, as "path:line:text", bounded.

use regex::{Regex, RegexBuilder};
use serde_json::json;

use super::Done;
use super::find::compile;
use super::walk::{Walk, looks_binary};
use crate::context::ToolContext;
use crate::error::ToolError;
use crate::fsio::read_bounded;
use crate::input::SearchInput;
use crate::policy::{canonical_root, relative, resolve_dir};

/// Longest piece of a matching line shown to the model.
const MAX_LINE_CHARS: usize = 300;

/// Compiles the pattern; a bad one is an input error on `pattern`.
fn compile_regex(pattern: &str, case_insensitive: bool) -> Result<Regex, ToolError> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| ToolError::input(Some("pattern"), format!("invalid regular expression: {e}")))
}

/// Searches the files below `input.path` (or that one file).
pub(crate) fn run(ctx: &ToolContext, input: SearchInput) -> Result<Done, ToolError> {
    let regex = compile_regex(&input.pattern, input.case_insensitive.unwrap_or(false))?;
    let glob = input
        .glob
        .as_deref()
        .map(|g| compile(g, "glob"))
        .transpose()?;
    let root = canonical_root(&ctx.workspace)?;
    let target = resolve_dir(&root, input.path.as_deref())?;
    let max = ctx.limits.max_search_matches;
    let mut matches = Vec::new();
    let (mut truncated, mut files_searched) = (false, 0usize);
    let mut search_file = |path: &std::path::Path, rel: &str| -> bool {
        if glob.as_ref().is_some_and(|g| !g.is_match(rel)) {
            return true;
        }
        let Ok(bytes) = read_bounded(&root, path, rel, ctx.limits.max_file_bytes) else {
            return true;
        };
        if looks_binary(&bytes) {
            return true;
        }
        files_searched += 1;
        let text = String::from_utf8_lossy(&bytes);
        for (index, line) in text.lines().enumerate() {
            if !regex.is_match(line) {
                continue;
            }
            if matches.len() >= max {
                truncated = true;
                return false;
            }
            matches.push(format!("{rel}:{}:{}", index + 1, clip(line)));
        }
        true
    };
    if target.is_file() {
        search_file(&target, &relative(&root, &target));
    } else if target.is_dir() {
        Walk::new(&root, &target, None).run(&ctx.cancel, |entry, rel| {
            if !entry.is_file() {
                return true;
            }
            search_file(&root.join(rel), rel)
        })?;
    } else {
        return Err(ToolError::failed(format!(
            "{} does not exist",
            input.path.unwrap_or_default()
        )));
    }
    Ok(Done {
        result: json!({"matches": matches, "truncated": truncated, "files_searched": files_searched}),
        paths: Vec::new(),
    })
}

fn clip(line: &str) -> String {
    let line = line.trim_end();
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}
