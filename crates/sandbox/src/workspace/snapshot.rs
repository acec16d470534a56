//! The snapshot of SPEC §6: what the workspace changed against a base manifest, from the
//! pruned walk only, every path checked against the policy before it may reach a draft.

use std::collections::HashMap;
use std::path::Path;

use draftsmith_core::{BlobHash, DraftPath};
use draftsmith_tools::beneath;
use rustix::fs::OFlags;

use super::index::FileIndex;
use crate::controller::{Change, FileEntry};
use crate::error::SandboxError;

/// The changes that turn `base` into what `root` holds, sorted by path; refused when the
/// files to sync add up to more than `max_bytes` (0: no bound).
pub(crate) fn snapshot(
    root: &Path,
    base: &[FileEntry],
    index: &mut FileIndex,
    max_bytes: u64,
) -> Result<Vec<Change>, SandboxError> {
    let present = index.scan(root, false)?;
    if max_bytes > 0 {
        let bytes: u64 = present.keys().map(|rel| index.size(rel)).sum();
        if bytes > max_bytes {
            return Err(SandboxError::WorkspaceTooLarge {
                bytes,
                limit_bytes: max_bytes,
            });
        }
    }
    let known: HashMap<String, (DraftPath, &BlobHash)> = base
        .iter()
        .filter_map(|f| {
            let path = DraftPath::parse(&f.path).ok()?;
            Some((path.as_str().to_owned(), (path, &f.sha256)))
        })
        .collect();
    let mut changes = Vec::new();
    for (rel, sha) in &present {
        if known.get(rel).map(|(_, known)| known) == Some(&sha) {
            continue;
        }
        let path = match DraftPath::parse(rel) {
            Ok(path) if path.as_str() == rel => path,
            _ => {
                tracing::debug!(path = %rel, "snapshot skips a path the policy refuses");
                continue;
            }
        };
        // Never through a link: the sandbox's processes may be swapping directories.
        let full = root.join(rel);
        // Sized as the scan just found it, so it is read in one go.
        let expected = usize::try_from(index.size(rel)).unwrap_or(0);
        let read = beneath::open_in(root, &full, OFlags::RDONLY).and_then(|mut file| {
            let mut content = Vec::with_capacity(expected);
            std::io::Read::read_to_end(&mut file, &mut content).map(|_| content)
        });
        match read {
            Ok(content) => changes.push(Change {
                path,
                content: Some(content),
            }),
            Err(e) if beneath::is_gone(&e) => {}
            Err(e) => return Err(SandboxError::io(&full)(e)),
        }
    }
    for (rel, (path, _)) in &known {
        if !present.contains_key(rel) {
            changes.push(Change {
                path: path.clone(),
                content: None,
            });
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(changes)
}
