//! How a draft changes, in the one shape the sandbox reports it, the runner lands it and the
//! store writes it.

use crate::DraftPath;

/// One change to a draft: new content at a checked path, or `None` to delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Where.
    pub path: DraftPath,
    /// What it becomes; `None` deletes the path.
    pub content: Option<Vec<u8>>,
}
