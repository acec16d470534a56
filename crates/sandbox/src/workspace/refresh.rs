//! Materialisation: make the workspace hold exactly a manifest's files, writing only what
//! differs and removing what the manifest dropped. Directories on the way are made real
//! (a symlink or file in their place is replaced), so no write escapes the workspace.

use std::collections::{BTreeSet, HashMap};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use draftsmith_core::{BlobHash, DraftPath};

use super::index::FileIndex;
use super::walk::{FileStat, TMP_SUFFIX};
use rustix::fs::AtFlags;
use rustix::io::Errno;

use crate::controller::{FileEntry, Refreshed};
use crate::error::SandboxError;
use draftsmith_tools::beneath;

/// What a refresh must do: files to write (with the blob each needs) and files to remove.
#[derive(Debug, Default)]
pub(crate) struct RefreshPlan {
    /// `(relative path, blob)` for every file missing or different.
    pub(crate) write: Vec<(String, BlobHash)>,
    /// Files present that the manifest does not hold.
    pub(crate) remove: Vec<String>,
}

impl RefreshPlan {
    /// The distinct blobs the writes need.
    pub(crate) fn blobs(&self) -> Vec<BlobHash> {
        let set: BTreeSet<&BlobHash> = self.write.iter().map(|(_, h)| h).collect();
        set.into_iter().cloned().collect()
    }
}

/// Compares the workspace with `files` (every path checked against the policy).
pub(crate) fn plan(
    root: &Path,
    files: &[FileEntry],
    index: &mut FileIndex,
) -> Result<RefreshPlan, SandboxError> {
    let mut wanted = HashMap::with_capacity(files.len());
    for file in files {
        let path = DraftPath::parse(&file.path).map_err(|e| SandboxError::PathBlocked {
            path: file.path.clone(),
            reason: e.reason().to_owned(),
        })?;
        wanted.insert(path.into_string(), &file.sha256);
    }
    index.catch_up(root)?;
    let mut plan = RefreshPlan::default();
    for (path, sha) in &wanted {
        if index.hash(path) != Some(*sha) {
            plan.write.push((path.clone(), (*sha).clone()));
        }
    }
    plan.write.sort();
    plan.remove = index
        .paths()
        .filter(|p| !wanted.contains_key(*p))
        .cloned()
        .collect();
    plan.remove.sort();
    Ok(plan)
}

/// Carries out `plan` with the fetched `blobs`, keeping the index current; what it makes is
/// given to `owner` as it is made. Every directory on the way is opened without following
/// a link (see [`draftsmith_tools::beneath`]): the sandbox's processes may be running meanwhile.
pub(crate) fn apply(
    root: &Path,
    plan: &RefreshPlan,
    blobs: &HashMap<BlobHash, Vec<u8>>,
    index: &mut FileIndex,
    owner: Option<u32>,
) -> Result<Refreshed, SandboxError> {
    let root_fd = beneath::open_root(root).map_err(SandboxError::io(root))?;
    for rel in &plan.remove {
        let (dir, name) = split(rel);
        let failed = |e| SandboxError::io(&root.join(rel))(e);
        if let Some(dir_fd) = beneath::existing_dir(root_fd.as_fd(), dir).map_err(failed)? {
            match rustix::fs::unlinkat(&dir_fd, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(failed(e.into())),
            }
        }
        index.forget(rel);
        remove_empty_parents(root_fd.as_fd(), dir);
    }
    // The writes are sorted, so files of one directory come together: its descriptor is
    // opened once for them.
    let mut open: Option<(&str, OwnedFd)> = None;
    for (rel, sha) in &plan.write {
        let content = blobs.get(sha).ok_or_else(|| SandboxError::Blob {
            hash: sha.clone(),
            message: "not supplied".into(),
        })?;
        let (dir, name) = split(rel);
        let failed = |e| SandboxError::io(&root.join(rel))(e);
        let dir_fd = match open.take() {
            Some((at, fd)) if at == dir => fd,
            _ => beneath::make_dirs(root_fd.as_fd(), dir, owner).map_err(failed)?,
        };
        let temp = format!(".{name}{TMP_SUFFIX}");
        let meta =
            beneath::write_file(dir_fd.as_fd(), name, &temp, content, owner).map_err(failed)?;
        open = Some((dir, dir_fd));
        index.record(rel, &FileStat::of_metadata(&meta), sha.clone());
    }
    Ok(Refreshed {
        written: plan.write.len(),
        removed: plan.remove.len(),
    })
}

/// `rel`'s directory ("" at the top) and name.
fn split(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Removes the directories a removal left empty, innermost first, up to (not including)
/// the root.
fn remove_empty_parents(root: BorrowedFd<'_>, dir: &str) {
    let parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for depth in (0..parts.len()).rev() {
        let parent = parts[..depth].join("/");
        let Ok(Some(parent_fd)) = beneath::existing_dir(root, &parent) else {
            break;
        };
        if rustix::fs::unlinkat(&parent_fd, parts[depth], AtFlags::REMOVEDIR).is_err() {
            break;
        }
    }
}
