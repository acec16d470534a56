//! A stopped sandbox's remains: its directory moved aside at once (under the map lock, so a
//! new sandbox of the same id never races the deletion), then deleted with its cgroup off
//! the async threads.

use std::path::PathBuf;
use std::sync::Arc;

use super::sandbox::Sandbox;
use super::{LocalController, TRASH_PREFIX};
use crate::limits::SandboxCgroup;

impl LocalController {
    /// Moves a stopped sandbox's directory aside (its deletion comes later); `None` when it
    /// is gone already.
    pub(super) fn move_aside(&self, sandbox: &Sandbox) -> Option<PathBuf> {
        let trash = self.root.join(format!(
            "{TRASH_PREFIX}{}-{}",
            sandbox.id,
            uuid::Uuid::new_v4().simple()
        ));
        match std::fs::rename(&sandbox.dir, &trash) {
            Ok(()) => Some(trash),
            Err(e) => {
                if sandbox.dir.exists() {
                    tracing::warn!(sandbox = %sandbox.id, error = %e, "cannot move a stopped sandbox aside");
                    return Some(sandbox.dir.clone());
                }
                None
            }
        }
    }
}

/// What a stopped sandbox leaves to delete: its directory moved aside, its cgroup.
#[derive(Debug, Default)]
pub(crate) struct Trash {
    pub(super) dir: Option<PathBuf>,
    pub(super) cgroup: Option<Arc<SandboxCgroup>>,
}

/// Empties and removes cgroups, then deletes directories moved aside, off the async threads.
pub(crate) async fn delete_trash(trash: Vec<Trash>) {
    if trash.iter().all(|t| t.dir.is_none() && t.cgroup.is_none()) {
        return;
    }
    let done = tokio::task::spawn_blocking(move || {
        for item in trash {
            if let Some(cgroup) = item.cgroup {
                cgroup.destroy();
            }
            let Some(path) = item.dir else { continue };
            if let Err(e) = draftsmith_tools::beneath::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete a stopped sandbox");
            }
        }
    })
    .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "sandbox deletion task failed");
    }
}
