//! Workspace → draft sync with a three-way check, landing with the run's result in one
//! transaction. The workspace was refreshed from `base`;
//! if the draft moved on meanwhile, changes to paths nobody else touched are applied on the
//! new revision, and a path changed differently by both sides is a conflict that loses
//! neither version (the run's is kept as a `rejected` checkpoint by the caller).

use draftsmith_core::BlobHash;
use draftsmith_core::api::FilesChanged;
use draftsmith_store::{FileChange, Landed, Landing, Manifest, Store, StoreError};

/// How often a sync retries when another writer wins the race for the next revision.
const ATTEMPTS: usize = 5;

/// Why a sync did not land.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Both the run and someone else changed these paths differently.
    #[error("the draft changed meanwhile in the same files: {}", paths.join(", "))]
    Conflict {
        /// The contested paths.
        paths: Vec<String>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Lands a run's result (`landing.changes`, made against `base`) with everything the run's
/// records say about it, in one transaction per attempt; see [`Store::land_run`].
pub async fn land(
    store: &dyn Store,
    base: &Manifest,
    mut landing: Landing,
) -> Result<Landed, SyncError> {
    // The common case first: the draft has not moved since the refresh, which the
    // landing's own compare with `expected` proves without reading the draft.
    landing.expected = base.revision;
    let mut last = match store.land_run(landing.clone()).await {
        Ok(landed) => return Ok(landed),
        Err(StoreError::RevisionConflict { current }) => Some(current),
        Err(err) => return Err(err.into()),
    };
    for _ in 0..ATTEMPTS {
        let current = store.draft(landing.app).await?;
        if current.revision != base.revision {
            let theirs = store
                .changes_between(landing.app, base.revision, current.revision)
                .await?;
            let contested = contested(&landing.changes, &theirs, &current);
            if !contested.is_empty() {
                return Err(SyncError::Conflict { paths: contested });
            }
        }
        landing.expected = current.revision;
        match store.land_run(landing.clone()).await {
            Ok(landed) => return Ok(landed),
            Err(StoreError::RevisionConflict { current }) => last = Some(current),
            Err(err) => return Err(err.into()),
        }
    }
    Err(SyncError::Store(StoreError::RevisionConflict {
        current: last.unwrap_or(base.revision),
    }))
}

/// Paths both sides changed, where the run's result differs from the draft's now.
fn contested(ours: &[FileChange], theirs: &FilesChanged, current: &Manifest) -> Vec<String> {
    let touched = |p: &str| {
        theirs
            .added
            .iter()
            .chain(&theirs.modified)
            .chain(&theirs.deleted)
            .any(|t| t == p)
    };
    ours.iter()
        .filter(|c| touched(c.path.as_str()))
        .filter(|c| {
            let now = current
                .files
                .iter()
                .find(|f| f.path == c.path.as_str())
                .map(|f| &f.sha256);
            let mine = c.content.as_ref().map(|bytes| BlobHash::of(bytes));
            now != mine.as_ref()
        })
        .map(|c| c.path.as_str().to_owned())
        .collect()
}
