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

/// Compares the workspace with `files` (see [`Comparison`]), after a look at what changed
/// in it since the last one.
pub(crate) fn plan(
    root: &Path,
    files: &[FileEntry],
    index: &mut FileIndex,
) -> Result<RefreshPlan, SandboxError> {
    index.catch_up(root)?;
    let mut comparison = Comparison::new(index);
    comparison.add(files)?;
    Ok(comparison.finish())
}

/// A manifest compared with the index as of its last look, a part at a time (a caller on
/// the runtime's threads yields between parts): a hash lookup per file the workspace holds
/// as the manifest has it, which is all of them but what changed. Only a path the
/// workspace does not hold so is checked against the policy (and normalised), as only
/// such a path is written: one it holds as named is a regular file the walk or an event
/// found inside the workspace, and nothing is done there (a draft's paths were checked
/// as they entered it).
pub(crate) struct Comparison<'a> {
    index: &'a mut FileIndex,
    write: Vec<(String, BlobHash)>,
}

impl<'a> Comparison<'a> {
    pub(crate) fn new(index: &'a mut FileIndex) -> Self {
        index.begin_marking();
        Self {
            index,
            write: Vec::new(),
        }
    }

    /// Compares the next part of the manifest.
    pub(crate) fn add(&mut self, files: &[FileEntry]) -> Result<(), SandboxError> {
        for file in files {
            if self.index.mark(&file.path, &file.sha256) {
                continue;
            }
            let path = DraftPath::parse(&file.path).map_err(|e| SandboxError::PathBlocked {
                path: file.path.clone(),
                reason: e.reason().to_owned(),
            })?;
            if *path != *file.path && self.index.mark(&path, &file.sha256) {
                continue;
            }
            self.write.push((path.into_string(), file.sha256.clone()));
        }
        Ok(())
    }

    /// The plan: the files to write, each path once, and the files the manifest does not
    /// name.
    pub(crate) fn finish(self) -> RefreshPlan {
        let mut write = self.write;
        write.sort_by(|a, b| a.0.cmp(&b.0));
        // The later of two entries for one path (kept in order by the stable sort) wins.
        write.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        RefreshPlan {
            write,
            remove: self.index.unmarked(),
        }
    }
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
