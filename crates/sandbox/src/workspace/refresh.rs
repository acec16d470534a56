//! Materialisation: make the workspace hold exactly a manifest's files, writing only what
//! differs and removing what the manifest dropped. Directories on the way are made real
//! (a symlink or file in their place is replaced), so no write escapes the workspace.

use std::collections::{BTreeSet, HashMap};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use draftsmith_core::{BlobHash, DraftPath};

use super::index::FileIndex;
use super::walk::TMP_SUFFIX;
use crate::controller::{FileEntry, Refreshed};
use crate::error::SandboxError;

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
    let present = index.scan(root, true)?;
    let mut plan = RefreshPlan::default();
    for (path, sha) in &wanted {
        if present.get(path) != Some(*sha) {
            plan.write.push((path.clone(), (*sha).clone()));
        }
    }
    plan.write.sort();
    plan.remove = present
        .into_keys()
        .filter(|p| !wanted.contains_key(p))
        .collect();
    Ok(plan)
}

/// Carries out `plan` with the fetched `blobs`, keeping the index current.
pub(crate) fn apply(
    root: &Path,
    plan: &RefreshPlan,
    blobs: &HashMap<BlobHash, Vec<u8>>,
    index: &mut FileIndex,
) -> Result<Refreshed, SandboxError> {
    for rel in &plan.remove {
        let target = root.join(rel);
        match std::fs::remove_file(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(SandboxError::io(&target)(e)),
        }
        index.forget(rel);
        remove_empty_parents(root, rel);
    }
    for (rel, sha) in &plan.write {
        let content = blobs.get(sha).ok_or_else(|| SandboxError::Blob {
            hash: sha.clone(),
            message: "not supplied".into(),
        })?;
        let target = write_file(root, rel, content)?;
        let meta = target
            .symlink_metadata()
            .map_err(SandboxError::io(&target))?;
        index.record(rel, &meta, sha.clone());
    }
    Ok(Refreshed {
        written: plan.write.len(),
        removed: plan.remove.len(),
    })
}

/// Writes `content` at `rel` through a temporary file renamed into place, so a symlink at
/// the target is replaced rather than followed.
fn write_file(root: &Path, rel: &str, content: &[u8]) -> Result<PathBuf, SandboxError> {
    let (dir, name) = match rel.rsplit_once('/') {
        Some((dir, name)) => (real_dirs(root, dir)?, name),
        None => (root.to_path_buf(), rel),
    };
    let target = dir.join(name);
    if target.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        std::fs::remove_dir_all(&target).map_err(SandboxError::io(&target))?;
    }
    let tmp = dir.join(format!(".{name}{TMP_SUFFIX}"));
    std::fs::write(&tmp, content).map_err(SandboxError::io(&tmp))?;
    std::fs::rename(&tmp, &target).map_err(SandboxError::io(&target))?;
    Ok(target)
}

/// Creates `root/dir` component by component, replacing anything that is not a real
/// directory (notably a symlink that could lead out of the workspace).
fn real_dirs(root: &Path, dir: &str) -> Result<PathBuf, SandboxError> {
    let mut current = root.to_path_buf();
    for part in dir.split('/') {
        current.push(part);
        match current.symlink_metadata() {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => std::fs::remove_file(&current).map_err(SandboxError::io(&current))?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(SandboxError::io(&current)(e)),
        }
        std::fs::create_dir(&current).map_err(SandboxError::io(&current))?;
    }
    Ok(current)
}

/// Removes the directories a removal left empty, up to (not including) the root.
fn remove_empty_parents(root: &Path, rel: &str) {
    let mut parts: Vec<&str> = rel.split('/').collect();
    parts.pop();
    while !parts.is_empty() {
        if std::fs::remove_dir(root.join(parts.join("/"))).is_err() {
            break;
        }
        parts.pop();
    }
}
