//! A run's workspace on disk: materialised from a draft manifest (writing only what
//! differs) and read back as a set of changes. Generated and dependency directories are
//! pruned while walking, never filtered afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use draftsmith_core::path::{BLOCKED_DIRS, BLOCKED_FILE_NAMES, BLOCKED_FILE_SUFFIXES};
use draftsmith_core::{BlobHash, DraftPath};
use draftsmith_store::{FileChange, Manifest, Store};

/// A failure to read or write the workspace.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The file system refused.
    #[error("workspace I/O on {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] draftsmith_store::StoreError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WorkspaceError + '_ {
    move |source| WorkspaceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes `root` hold exactly `manifest`'s files (outside pruned directories); returns how
/// many files it wrote.
pub async fn materialize(
    root: &Path,
    manifest: &Manifest,
    store: &dyn Store,
) -> Result<usize, WorkspaceError> {
    tokio::fs::create_dir_all(root).await.map_err(io(root))?;
    let present = scan(root)?;
    let mut written = 0;
    for file in &manifest.files {
        if present.get(&file.path) == Some(&file.sha256) {
            continue;
        }
        let content = store.blob(&file.sha256).await?;
        let target = root.join(&file.path);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io(parent))?;
        }
        tokio::fs::write(&target, content)
            .await
            .map_err(io(&target))?;
        written += 1;
    }
    let wanted: std::collections::HashSet<&str> =
        manifest.files.iter().map(|f| f.path.as_str()).collect();
    for path in present.keys().filter(|p| !wanted.contains(p.as_str())) {
        let target = root.join(path);
        tokio::fs::remove_file(&target).await.map_err(io(&target))?;
    }
    Ok(written)
}

/// The changes that turn `manifest` into what `root` holds now.
pub fn changes(root: &Path, manifest: &Manifest) -> Result<Vec<FileChange>, WorkspaceError> {
    let present = scan(root)?;
    let mut out = Vec::new();
    let known: BTreeMap<&str, &BlobHash> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), &f.sha256))
        .collect();
    for (path, hash) in &present {
        if known.get(path.as_str()) != Some(&hash) {
            let Ok(draft_path) = DraftPath::parse(path) else {
                continue;
            };
            let full = root.join(path);
            let content = std::fs::read(&full).map_err(io(&full))?;
            out.push(FileChange {
                path: draft_path,
                content: Some(content),
            });
        }
    }
    for path in known.keys().filter(|p| !present.contains_key(**p)) {
        if let Ok(draft_path) = DraftPath::parse(path) {
            out.push(FileChange {
                path: draft_path,
                content: None,
            });
        }
    }
    Ok(out)
}

/// Every regular file under `root` with its hash, pruning blocked directories and skipping
/// symlinks and generated files.
fn scan(root: &Path) -> Result<BTreeMap<String, BlobHash>, WorkspaceError> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&dir))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let kind = entry.file_type().map_err(io(&entry.path()))?;
            if kind.is_dir() {
                if !BLOCKED_DIRS.contains(&name.as_ref()) {
                    stack.push(entry.path());
                }
            } else if kind.is_file()
                && !BLOCKED_FILE_NAMES.contains(&name.as_ref())
                && !BLOCKED_FILE_SUFFIXES.iter().any(|s| name.ends_with(s))
            {
                let path = entry.path();
                let Ok(relative) = path.strip_prefix(root) else {
                    continue;
                };
                let relative = relative.to_string_lossy().replace('\\', "/");
                let content = std::fs::read(&path).map_err(io(&path))?;
                out.insert(relative, BlobHash::of(&content));
            }
        }
    }
    Ok(out)
}
