//! Why a checkpoint was taken, and what a change of the draft touched: shared by the API's
//! bodies and the run's events.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a checkpoint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// Before a run changed anything.
    PreRun,
    /// After a run's work was synced.
    PostRun,
    /// The draft as it was just before a restore replaced it.
    Restore,
    /// Taken by a person.
    Manual,
    /// Work a run produced that failed verification and never reached the draft.
    Rejected,
}

impl CheckpointKind {
    /// Every kind.
    pub const ALL: [CheckpointKind; 5] = [
        Self::PreRun,
        Self::PostRun,
        Self::Restore,
        Self::Manual,
        Self::Rejected,
    ];

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreRun => "pre_run",
            Self::PostRun => "post_run",
            Self::Restore => "restore",
            Self::Manual => "manual",
            Self::Rejected => "rejected",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl PartialEq<str> for CheckpointKind {
    /// Compares with the stored and wire spelling.
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl std::fmt::Display for CheckpointKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Paths that differ between two manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FilesChanged {
    /// Created.
    pub added: Vec<String>,
    /// Content changed.
    pub modified: Vec<String>,
    /// Removed.
    pub deleted: Vec<String>,
}

impl FilesChanged {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.deleted.is_empty()
    }
}
