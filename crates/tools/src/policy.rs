//! The file-system half of the path policy (SPEC §6), on top of core's lexical `DraftPath`:
//! a path resolves inside the workspace without following any symlink out of it, and writing
//! tools never act through a symlink at the target itself.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use draftsmith_core::{DraftPath, PathError};

use crate::error::ToolError;

/// How the last component of a path is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A symlink at the target is followed if it stays inside the workspace.
    Follow,
    /// A symlink at the target is refused: writing, deleting or renaming acts on real entries only.
    Refuse,
}

/// Resolves `raw` for reading: inside the workspace, symlinks followed only while they stay in it.
/// `root` is the workspace's canonical path ([`canonical_root`], taken once per tool call).
pub fn resolve_for_read(root: &Path, raw: &str) -> Result<PathBuf, ToolError> {
    resolve(root, raw, Target::Follow)
}

/// Resolves `raw` for creating or overwriting a file: no symlink leads out, and the target
/// itself is not a symlink (a dangling one would create a file wherever it points).
pub fn resolve_for_write(root: &Path, raw: &str) -> Result<PathBuf, ToolError> {
    resolve(root, raw, Target::Refuse)
}

/// Resolves `raw` for deleting or renaming an entry; the same rules as [`resolve_for_write`].
pub fn resolve_for_entry(root: &Path, raw: &str) -> Result<PathBuf, ToolError> {
    resolve(root, raw, Target::Refuse)
}

/// Resolves a directory argument where "." and absence mean the workspace root.
pub(crate) fn resolve_dir(root: &Path, raw: Option<&str>) -> Result<PathBuf, ToolError> {
    match raw {
        None => Ok(root.to_path_buf()),
        // "." and "./" mean the root; "/" is absolute and goes to the policy like any path.
        Some(raw) if !raw.starts_with('/') && raw.split('/').all(|p| p == "." || p.is_empty()) => {
            Ok(root.to_path_buf())
        }
        Some(raw) => resolve_for_read(root, raw),
    }
}

/// The workspace as an absolute path with no symlinks, the prefix every result must keep;
/// each tool call takes it once and resolves every path against it.
pub fn canonical_root(workspace: &Path) -> Result<PathBuf, ToolError> {
    workspace.canonicalize().map_err(|e| {
        ToolError::failed(format!(
            "the workspace {} cannot be used: {e}",
            workspace.display()
        ))
    })
}

/// The lexical check alone, mapped to tool errors (an empty path is an input error).
pub(crate) fn parse_lexical(raw: &str) -> Result<DraftPath, ToolError> {
    DraftPath::parse(raw).map_err(|e| lexical_error(raw, &e))
}

fn lexical_error(raw: &str, error: &PathError) -> ToolError {
    match error {
        PathError::Empty => ToolError::input(Some("path"), "path is empty"),
        other => ToolError::blocked(
            "path",
            format!("path {:?} is refused: {other}", shorten(raw)),
        ),
    }
}

fn resolve(root: &Path, raw: &str, target: Target) -> Result<PathBuf, ToolError> {
    let draft = parse_lexical(raw)?;
    let parts: Vec<&str> = draft.as_str().split('/').collect();
    let mut current = root.to_path_buf();
    for (index, part) in parts.iter().enumerate() {
        let next = current.join(part);
        let is_last = index + 1 == parts.len();
        let meta = match std::fs::symlink_metadata(&next) {
            Ok(meta) => meta,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Nothing below here exists yet, so nothing below can be a symlink.
                let mut rest = next;
                rest.extend(&parts[index + 1..]);
                return Ok(rest);
            }
            Err(e) => {
                return Err(ToolError::failed(format!(
                    "cannot inspect {}: {e}",
                    draft.as_str()
                )));
            }
        };
        if !meta.file_type().is_symlink() {
            current = next;
            continue;
        }
        let shown = parts[..=index].join("/");
        if is_last && target == Target::Refuse {
            return Err(ToolError::blocked(
                "path",
                format!("{shown} is a symbolic link; writing tools do not act on symlinks"),
            ));
        }
        let resolved = next.canonicalize().map_err(|_| {
            ToolError::blocked(
                "path",
                format!("{shown} is a symbolic link that points nowhere"),
            )
        })?;
        let Ok(inside) = resolved.strip_prefix(root) else {
            return Err(ToolError::blocked(
                "path",
                format!("{shown} is a symbolic link that leads outside the workspace"),
            ));
        };
        // The link's real target must itself pass the lexical policy (no link into .git/).
        if let Some(inside) = inside.to_str().filter(|s| !s.is_empty()) {
            DraftPath::parse(inside).map_err(|e| {
                ToolError::blocked(
                    "path",
                    format!("{shown} is a symbolic link to a refused path: {e}"),
                )
            })?;
        } else if !inside.as_os_str().is_empty() {
            return Err(ToolError::blocked(
                "path",
                format!("{shown} points to a path that is not UTF-8"),
            ));
        }
        current = resolved;
    }
    Ok(current)
}

/// The workspace-relative form of a resolved path, for reporting.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_string_lossy().into_owned())
}

fn shorten(raw: &str) -> String {
    if raw.len() <= 120 {
        return raw.to_owned();
    }
    let mut end = 120;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &raw[..end])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use draftsmith_core::ErrorCode;

    #[test]
    fn resolves_inside_and_refuses_links_out() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::os::unix::fs::symlink(dir.path(), ws.join("out")).unwrap();
        std::os::unix::fs::symlink("src", ws.join("alias")).unwrap();
        let root = canonical_root(&ws).unwrap();
        assert_eq!(
            resolve_for_write(&root, "src/a/b.txt").unwrap(),
            root.join("src/a/b.txt")
        );
        assert_eq!(
            resolve_for_write(&root, "alias/x").unwrap(),
            root.join("src/x")
        );
        let err = resolve_for_write(&root, "out/x").unwrap_err();
        assert_eq!(err.code, ErrorCode::CodingAgentPathBlocked);
        let err = resolve_for_write(&root, "alias").unwrap_err();
        assert_eq!(err.code, ErrorCode::CodingAgentPathBlocked);
        assert_eq!(resolve_for_read(&root, "alias").unwrap(), root.join("src"));
        let err = resolve_for_read(&root, "").unwrap_err();
        assert_eq!(err.code, ErrorCode::CodingAgentToolInputInvalid);
    }
}
