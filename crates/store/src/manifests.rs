//! Draft manifests this instance has met, by app and revision, so a run can start from
//! its base revision's files without reading them. A revision's files never change once
//! written: every draft write, landing or restore makes a new revision, numbered under the
//! app row's lock, so an entry is never stale, whichever instance wrote the draft since.
//! Kept: what a read found, an app's first revision, and a landing's revision (derived
//! from the one it was written on, when that is kept). Bounded by the file entries held.

use std::sync::{Mutex, MutexGuard};

use draftsmith_core::AppId;
use draftsmith_core::api::DraftFile;
use lru::LruCache;

use crate::draft_writes::Wanted;
use crate::drafts::Manifest;

/// At most this many file entries are kept, over every manifest (about 100 bytes each).
const MAX_FILES: usize = 100_000;

/// The kept manifests, least recently used first out.
#[derive(Debug)]
pub(crate) struct Manifests {
    kept: Mutex<Kept>,
}

#[derive(Debug)]
struct Kept {
    by_revision: LruCache<(AppId, i64), Vec<DraftFile>>,
    /// File entries held, over every manifest.
    files: usize,
}

impl Default for Manifests {
    fn default() -> Self {
        Self {
            kept: Mutex::new(Kept {
                by_revision: LruCache::unbounded(),
                files: 0,
            }),
        }
    }
}

impl Manifests {
    fn kept(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `app`'s draft at `revision`, when kept.
    pub(crate) fn get(&self, app: AppId, revision: i64) -> Option<Manifest> {
        let files = self.kept().by_revision.get(&(app, revision))?.clone();
        Some(Manifest { revision, files })
    }

    /// Keeps `manifest` as `app`'s draft at its revision.
    pub(crate) fn keep(&self, app: AppId, manifest: &Manifest) {
        self.insert(app, manifest.revision, manifest.files.clone());
    }

    /// Keeps `app`'s revision `to`, written as `wanted` on revision `from`, when `from` is
    /// kept.
    pub(crate) fn keep_written(&self, app: AppId, from: i64, to: i64, wanted: &Wanted) {
        let Some(base) = self.get(app, from) else {
            return;
        };
        let mut files = base.files;
        // `wanted` is by path, as `files` is: both sides are walked once.
        files.retain(|f| !wanted.contains_key(&f.path));
        files.extend(wanted.iter().filter_map(|(path, new)| {
            new.as_ref().map(|(sha256, size)| DraftFile {
                path: path.clone(),
                size: *size,
                sha256: sha256.clone(),
            })
        }));
        files.sort_by(|a, b| a.path.cmp(&b.path));
        self.insert(app, to, files);
    }

    fn insert(&self, app: AppId, revision: i64, files: Vec<DraftFile>) {
        if files.len() > MAX_FILES {
            return;
        }
        let mut kept = self.kept();
        kept.files += files.len();
        if let Some(old) = kept.by_revision.put((app, revision), files) {
            kept.files -= old.len();
        }
        while kept.files > MAX_FILES {
            let Some((_, old)) = kept.by_revision.pop_lru() else {
                break;
            };
            kept.files -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use draftsmith_core::BlobHash;

    use super::*;

    fn file(path: &str, content: &str) -> DraftFile {
        DraftFile {
            path: path.into(),
            size: content.len() as i64,
            sha256: BlobHash::of(content.as_bytes()),
        }
    }

    #[test]
    fn a_written_revision_is_its_base_with_the_writes_applied_in_path_order() {
        let manifests = Manifests::default();
        let app = AppId::new();
        let base = Manifest {
            revision: 3,
            files: vec![file("a", "1"), file("b/c", "2"), file("d", "3")],
        };
        manifests.keep(app, &base);
        let wanted: Wanted = [
            ("b/c".to_owned(), None),
            ("c".to_owned(), Some((BlobHash::of(b"new"), 3))),
            ("d".to_owned(), Some((BlobHash::of(b"four"), 4))),
        ]
        .into_iter()
        .collect();
        manifests.keep_written(app, 3, 4, &wanted);
        let written = manifests.get(app, 4);
        let expected = vec![file("a", "1"), file("c", "new"), file("d", "four")];
        assert_eq!(written.map(|m| (m.revision, m.files)), Some((4, expected)));
        // The base is still there, as it was.
        assert_eq!(manifests.get(app, 3).map(|m| m.files), Some(base.files));
    }

    #[test]
    fn a_write_on_a_revision_not_kept_keeps_nothing() {
        let manifests = Manifests::default();
        let app = AppId::new();
        let wanted: Wanted = [("a".to_owned(), None)].into_iter().collect();
        manifests.keep_written(app, 1, 2, &wanted);
        assert!(manifests.get(app, 2).is_none());
    }

    #[test]
    fn the_least_recently_used_go_first_once_the_files_are_over_the_bound() {
        let manifests = Manifests::default();
        let app = AppId::new();
        let half = |revision| Manifest {
            revision,
            files: (0..MAX_FILES / 2)
                .map(|i| file(&format!("f{i:06}"), "x"))
                .collect(),
        };
        manifests.keep(app, &half(1));
        manifests.keep(app, &half(2));
        // Revision 1 used last: revision 2 goes when a third comes.
        assert!(manifests.get(app, 1).is_some());
        manifests.keep(app, &half(3));
        assert!(manifests.get(app, 1).is_some());
        assert!(manifests.get(app, 2).is_none());
        assert!(manifests.get(app, 3).is_some());
        assert!(manifests.kept().files <= MAX_FILES);
        // One manifest over the bound alone is never kept.
        let huge = Manifest {
            revision: 4,
            files: (0..=MAX_FILES)
                .map(|i| file(&format!("g{i}"), "y"))
                .collect(),
        };
        manifests.keep(app, &huge);
        assert!(manifests.get(app, 4).is_none());
        assert!(manifests.get(app, 3).is_some());
    }
}
