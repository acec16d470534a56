//! The writing side of `apply_patch`: applies computed changes one by one and, if any write
//! fails, restores every file already changed, so a patch lands whole or not at all.

use std::path::{Path, PathBuf};

use crate::beneath;
use crate::error::ToolError;
use crate::fsio::{create_parents, io_failed, remove_dirs, write_atomic};
use crate::policy::relative;

/// One file's content before and after the patch (`None`: absent).
pub(crate) struct Change {
    /// Resolved absolute path inside the workspace.
    pub path: PathBuf,
    /// Content on disk before.
    pub before: Option<Vec<u8>>,
    /// Content wanted after.
    pub after: Option<Vec<u8>>,
}

/// What was done for one change, so it can be undone.
struct Done {
    path: PathBuf,
    before: Option<Vec<u8>>,
    created_dirs: Vec<PathBuf>,
}

/// Writes every change or, on the first failure, undoes those already written.
pub(crate) fn commit(root: &Path, changes: Vec<Change>) -> Result<(), ToolError> {
    let mut done: Vec<Done> = Vec::with_capacity(changes.len());
    for change in changes {
        let shown = relative(root, &change.path);
        let result = match &change.after {
            Some(content) => write_new(root, &change.path, &shown, content),
            None => beneath::remove_in(root, &change.path)
                .map(|_| Vec::new())
                .map_err(|e| io_failed("delete", &shown, &e)),
        };
        match result {
            Ok(created_dirs) => done.push(Done {
                path: change.path,
                before: change.before,
                created_dirs,
            }),
            Err(error) => {
                undo(root, done);
                return Err(ToolError::failed(format!(
                    "{}; no file was changed",
                    error.message
                )));
            }
        }
    }
    Ok(())
}

fn write_new(
    root: &Path,
    path: &Path,
    shown: &str,
    content: &[u8],
) -> Result<Vec<PathBuf>, ToolError> {
    let created = match path.parent() {
        Some(parent) => create_parents(root, parent)?,
        None => Vec::new(),
    };
    if let Err(e) = write_atomic(root, path, shown, content) {
        remove_dirs(&created);
        return Err(e);
    }
    Ok(created)
}

/// Best effort: restore earlier contents in reverse order.
fn undo(root: &Path, done: Vec<Done>) {
    for step in done.into_iter().rev() {
        let shown = relative(root, &step.path);
        match step.before {
            Some(before) => {
                let _ = write_atomic(root, &step.path, &shown, &before);
            }
            None => {
                let _ = beneath::remove_in(root, &step.path);
            }
        }
        remove_dirs(&step.created_dirs);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::fs;

    use super::*;

    #[test]
    fn a_failed_write_restores_everything_already_written() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::write(root.join("a.txt"), "old").unwrap();
        fs::write(root.join("gone.txt"), "keep me").unwrap();
        fs::write(root.join("file"), "not a dir").unwrap();
        let changes = vec![
            Change {
                path: root.join("a.txt"),
                before: Some(b"old".to_vec()),
                after: Some(b"new".to_vec()),
            },
            Change {
                path: root.join("n/e/w.txt"),
                before: None,
                after: Some(b"x".to_vec()),
            },
            Change {
                path: root.join("gone.txt"),
                before: Some(b"keep me".to_vec()),
                after: None,
            },
            Change {
                path: root.join("file/x.txt"),
                before: None,
                after: Some(b"x".to_vec()),
            },
        ];
        let error = commit(&root, changes).unwrap_err();
        assert!(
            error.message.contains("no file was changed"),
            "{}",
            error.message
        );
        assert_eq!(fs::read_to_string(root.join("a.txt")).unwrap(), "old");
        assert_eq!(
            fs::read_to_string(root.join("gone.txt")).unwrap(),
            "keep me"
        );
        assert!(!root.join("n").exists());
        assert_eq!(fs::read_to_string(root.join("file")).unwrap(), "not a dir");
    }
}
