//! The one walk of a workspace: generated and dependency directories are pruned (never
//! entered), symlinks and generated files skipped, so its cost is the app's own files.

use std::fs::Metadata;
use std::path::Path;

use draftsmith_core::path::{is_blocked_dir, is_blocked_file};

use crate::error::SandboxError;

/// Suffix of the temporary files a refresh writes before renaming them into place.
pub(crate) const TMP_SUFFIX: &str = ".draftsmith-tmp";

/// A regular file found in the workspace.
pub(crate) struct Found {
    /// Relative `/`-separated path.
    pub(crate) rel: String,
    /// Its `lstat`.
    pub(crate) meta: Metadata,
}

/// Every regular file under `root` outside pruned directories.
pub(crate) fn walk(root: &Path) -> Result<Vec<Found>, SandboxError> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(SandboxError::io(&dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(SandboxError::io(&dir))?;
            let name = entry.file_name();
            // A name that is not UTF-8 can be neither a draft path nor a manifest entry.
            let Some(name) = name.to_str() else { continue };
            let kind = entry.file_type().map_err(SandboxError::io(&entry.path()))?;
            let rel = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            };
            if kind.is_dir() {
                if !is_blocked_dir(name) {
                    stack.push((entry.path(), rel));
                }
            } else if kind.is_file() && !is_skipped_file(name) {
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(SandboxError::io(&entry.path())(e)),
                };
                out.push(Found { rel, meta });
            }
        }
    }
    Ok(out)
}

fn is_skipped_file(name: &str) -> bool {
    is_blocked_file(name) || name.ends_with(TMP_SUFFIX)
}
