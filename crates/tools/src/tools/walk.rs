//! One way to walk the workspace for `list`, `search` and `glob`: from the root so its
//! .gitignore applies, never following symlinks, never entering blocked directories.

use std::path::{Path, PathBuf};

use draftsmith_core::path::{is_blocked_dir, is_blocked_file};
use ignore::{DirEntry, WalkBuilder};
use tokio_util::sync::CancellationToken;

use crate::error::ToolError;

/// A walk of `target` (a directory inside `root`) down to `depth` levels below it.
pub(crate) struct Walk {
    root: PathBuf,
    target: PathBuf,
    depth: Option<usize>,
}

impl Walk {
    /// Walks `target`, which must be `root` or below it (both canonical).
    pub(crate) fn new(root: &Path, target: &Path, depth: Option<usize>) -> Self {
        Self {
            root: root.to_path_buf(),
            target: target.to_path_buf(),
            depth,
        }
    }

    /// Calls `visit` with each entry below the target and its workspace-relative path, in
    /// name order, until it returns `false`; stops with an error when `cancel` fires.
    pub(crate) fn run(
        &self,
        cancel: &CancellationToken,
        mut visit: impl FnMut(&DirEntry, &str) -> bool,
    ) -> Result<(), ToolError> {
        let target_rel = self
            .target
            .strip_prefix(&self.root)
            .unwrap_or(Path::new(""));
        let target_depth = target_rel.components().count();
        let root = self.root.clone();
        let target_for_filter = target_rel.to_path_buf();
        let mut builder = WalkBuilder::new(&self.root);
        builder
            .hidden(false)
            .parents(false)
            .git_global(false)
            .require_git(false)
            .follow_links(false)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(move |entry| {
                let Ok(rel) = entry.path().strip_prefix(&root) else {
                    return false;
                };
                let on_the_way =
                    target_for_filter.starts_with(rel) || rel.starts_with(&target_for_filter);
                on_the_way && !is_blocked(entry)
            });
        builder.max_depth(self.depth.map(|d| d + target_depth));
        for entry in builder.build() {
            if cancel.is_cancelled() {
                return Err(ToolError::failed("the run was cancelled"));
            }
            let Ok(entry) = entry else { continue };
            let Ok(rel) = entry.path().strip_prefix(&self.root) else {
                continue;
            };
            if !rel.starts_with(target_rel) || rel == target_rel {
                continue;
            }
            let Some(rel) = rel.to_str() else { continue };
            if !visit(&entry, rel) {
                break;
            }
        }
        Ok(())
    }
}

fn is_blocked(entry: &DirEntry) -> bool {
    let name = entry.file_name().to_string_lossy();
    let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
    if is_dir {
        is_blocked_dir(&name)
    } else {
        is_blocked_file(&name)
    }
}

/// Whether the first bytes of a file look binary (contain NUL).
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|b| *b == 0)
}
