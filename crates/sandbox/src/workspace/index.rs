//! The per-sandbox index `path → (sha256, size, mtime, inode)`: a file whose stat still
//! matches is not re-read. Like git's racy-clean rule, an entry recorded within
//! [`RACY_NS`] of its mtime is only trusted where a missed change is harmless (refresh).
//! After a whole walk the index holds exactly the files found, and a [`Watch`] then names
//! the files changed since, so a refresh looks at those alone.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use draftsmith_core::BlobHash;
use draftsmith_tools::beneath::{self, Met};
use rustix::fs::{AtFlags, FileType};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use super::walk::{FileStat, walk};
use super::watch::{Noticed, Watch};
use crate::error::SandboxError;

/// A write within this window of the recording could share its coarse mtime tick.
const RACY_NS: i64 = 100_000_000;

/// What the index remembers about one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    sha256: BlobHash,
    size: u64,
    mtime_ns: i64,
    ino: u64,
    recorded_ns: i64,
    /// The comparison ([`FileIndex::begin_marking`]) that last found the file named.
    #[serde(skip)]
    marked: u64,
}

/// The index of one workspace, kept in memory and persisted beside it.
#[derive(Debug, Default)]
pub(crate) struct FileIndex {
    file: PathBuf,
    entries: HashMap<String, Stamp>,
    /// Entries changed since the index was loaded or saved.
    changed: bool,
    /// Watches set by the last whole walk; `None` before one, or where they cannot be set.
    watch: Option<Watch>,
    /// How the last look at the workspace went (for tests and tracing).
    last: Looked,
    /// The comparison under way, and how many entries it found named so far.
    marking: u64,
    marked: usize,
}

/// How [`FileIndex::scan`] or [`FileIndex::catch_up`] looked at the workspace.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Looked {
    #[default]
    Nothing,
    /// Walked every directory.
    Walked,
    /// Looked at this many files named in change notifications.
    Noticed(usize),
}

impl FileIndex {
    /// Loads the index persisted at `file`; a missing or unreadable one is empty (files
    /// are then hashed once).
    pub(crate) fn load(file: PathBuf) -> Self {
        let entries = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Self {
            file,
            entries,
            changed: false,
            watch: None,
            last: Looked::Nothing,
            marking: 0,
            marked: 0,
        }
    }

    /// Persists the index, if anything in it changed. The file is rewritten in place, not
    /// replaced: a save cut short (a crash) leaves a prefix of the JSON, which never
    /// parses, and an index that does not parse loads empty (each file is hashed once
    /// more), so an atomic replace would buy nothing but a new inode per save, which is
    /// what costs most in a run's filesystem work where files were recently deleted.
    pub(crate) fn save(&mut self) -> Result<(), SandboxError> {
        if !self.changed {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&self.entries)
            .map_err(|e| SandboxError::Invalid(format!("index: {e}")))?;
        std::fs::write(&self.file, bytes).map_err(SandboxError::io(&self.file))?;
        self.changed = false;
        Ok(())
    }

    /// The index, moved with its workspace's directory, now saved at `file`.
    pub(crate) fn moved_to(mut self, file: PathBuf) -> Self {
        self.file = file;
        self
    }

    /// Drops what the watch queued since the last look: the caller did it, and knows the
    /// workspace holds what the index says.
    pub(crate) fn settle(&mut self) {
        if let Some(watch) = self.watch.as_mut() {
            watch.drain();
        }
    }

    /// True when nothing is queued on the watch: the workspace is as the last look left
    /// it, and this counts as a look at no file. Told without reading the disk or the
    /// queue; false where there is no watch.
    pub(crate) fn untouched(&mut self) -> bool {
        let quiet = self.watch.as_ref().is_some_and(Watch::is_quiet);
        if quiet {
            self.last = Looked::Noticed(0);
        }
        quiet
    }

    /// The recorded hash of `rel` if `stat` shows it untouched since.
    fn lookup(&self, rel: &str, stat: &FileStat, trust_racy: bool) -> Option<&BlobHash> {
        let stamp = self.entries.get(rel)?;
        let same =
            stamp.size == stat.size && stamp.mtime_ns == stat.mtime_ns && stamp.ino == stat.ino;
        let settled = trust_racy || stamp.mtime_ns.saturating_add(RACY_NS) < stamp.recorded_ns;
        (same && settled).then_some(&stamp.sha256)
    }

    /// Remembers that `rel`, as `stat` shows it now, holds `sha256`. A file hashed again
    /// only because it was racy, found as the index had it, leaves the saved index as it
    /// is: only its time of recording moved, and a saved entry recorded earlier is
    /// trusted later, never sooner (a run's snapshot no longer rewrites the index for it).
    pub(crate) fn record(&mut self, rel: &str, stat: &FileStat, sha256: BlobHash) {
        let stamp = Stamp {
            sha256,
            size: stat.size,
            mtime_ns: stat.mtime_ns,
            ino: stat.ino,
            recorded_ns: now_ns(),
            marked: 0,
        };
        let confirmed = self.entries.get(rel).is_some_and(|old| {
            (&old.sha256, old.size, old.mtime_ns, old.ino)
                == (&stamp.sha256, stamp.size, stamp.mtime_ns, stamp.ino)
        });
        self.entries.insert(rel.to_owned(), stamp);
        self.changed |= !confirmed;
    }

    /// Starts comparing the index with a manifest: no entry is named by it yet.
    pub(crate) fn begin_marking(&mut self) {
        self.marking += 1;
        self.marked = 0;
    }

    /// Whether the workspace held `sha256` at `rel` as of the last look; an entry at `rel`
    /// counts as named by the manifest under comparison, whatever it holds.
    pub(crate) fn mark(&mut self, rel: &str, sha256: &BlobHash) -> bool {
        let Some(stamp) = self.entries.get_mut(rel) else {
            return false;
        };
        if stamp.marked != self.marking {
            stamp.marked = self.marking;
            self.marked += 1;
        }
        stamp.sha256 == *sha256
    }

    /// The files the manifest under comparison did not name, sorted.
    pub(crate) fn unmarked(&self) -> Vec<String> {
        if self.marked == self.entries.len() {
            return Vec::new();
        }
        let mut paths: Vec<String> = (self.entries.iter())
            .filter(|(_, stamp)| stamp.marked != self.marking)
            .map(|(rel, _)| rel.clone())
            .collect();
        paths.sort();
        paths
    }

    /// The recorded size of `rel` (as of the last scan).
    pub(crate) fn size(&self, rel: &str) -> u64 {
        self.entries.get(rel).map_or(0, |s| s.size)
    }

    /// Forgets a removed file.
    pub(crate) fn forget(&mut self, rel: &str) {
        self.changed |= self.entries.remove(rel).is_some();
    }

    /// The workspace's files and their hashes, re-hashing only what the index cannot vouch
    /// for; `trust_racy` accepts entries recorded in the same tick as their last write.
    pub(crate) fn scan(
        &mut self,
        root: &Path,
        trust_racy: bool,
    ) -> Result<BTreeMap<String, BlobHash>, SandboxError> {
        let mut present = BTreeMap::new();
        let mut watch = self.watch.take().or_else(Watch::new);
        if let Some(watch) = watch.as_mut() {
            watch.begin_walk();
        }
        let found = walk(
            root,
            &|rel, stat| self.lookup(rel, stat, trust_racy).is_none(),
            &mut |dir, rel| {
                if watch.as_mut().is_some_and(|w| !w.enter(dir, rel)) {
                    watch = None;
                }
            },
        )?;
        if watch.as_mut().is_some_and(|w| !w.end_walk()) {
            watch = None;
        }
        self.watch = watch;
        self.last = Looked::Walked;
        for found in found {
            let sha = match found.content {
                None => match self.lookup(&found.rel, &found.stat, trust_racy) {
                    Some(sha) => sha.clone(),
                    None => continue,
                },
                Some(content) => {
                    let sha = BlobHash::of(&content);
                    // The walk's stat predates the read: a write in between makes the
                    // stamp stale, so the file is hashed again next time (never trusted wrongly).
                    self.record(&found.rel, &found.stat, sha.clone());
                    sha
                }
            };
            present.insert(found.rel, sha);
        }
        let before = self.entries.len();
        self.entries.retain(|rel, _| present.contains_key(rel));
        self.changed |= self.entries.len() != before;
        Ok(present)
    }

    /// Brings the index up to what the workspace holds, as [`scan`](Self::scan) with
    /// `trust_racy` would, looking only at the files named in change notifications since
    /// the last whole walk when the watches it set still stand for the workspace
    /// (otherwise this walks). The index then lists exactly the workspace's files.
    pub(crate) fn catch_up(&mut self, root: &Path) -> Result<(), SandboxError> {
        let Some(Noticed::Files(files)) = self.watch.as_mut().map(Watch::noticed) else {
            return self.scan(root, true).map(drop);
        };
        let root_fd = match beneath::open_root(root) {
            Ok(fd) => fd,
            Err(_) => return self.scan(root, true).map(drop),
        };
        for rel in &files {
            if let Err(e) = self.look_at(root_fd.as_fd(), rel) {
                // What was noticed is consumed: only a walk can tell it again.
                self.watch = None;
                return Err(SandboxError::io(&root.join(rel))(e));
            }
        }
        self.last = Looked::Noticed(files.len());
        Ok(())
    }

    /// How the last look at the workspace went.
    pub(crate) fn last_look(&self) -> Looked {
        self.last
    }

    /// Brings `rel`'s entry up to date with the workspace: a regular file that changed is
    /// hashed again (it was named in an event, so its stat is not trusted alone), anything
    /// else is forgotten. Never through a link, as the walk.
    fn look_at(&mut self, root: BorrowedFd<'_>, rel: &str) -> std::io::Result<()> {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let Some(dir) = beneath::existing_dir(root, dir)? else {
            self.forget(rel);
            return Ok(());
        };
        let stat = match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile => stat,
            Ok(_) | Err(Errno::NOENT) => {
                self.forget(rel);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let met = Met {
            dir: dir.as_fd(),
            name,
            rel,
            stat: &stat,
        };
        match met.read(u64::MAX) {
            Ok(content) => self.record(rel, &FileStat::of(&stat), BlobHash::of(&content)),
            Err(e) if beneath::is_gone(&e) => self.forget(rel),
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stat(size: u64) -> FileStat {
        FileStat {
            size,
            mtime_ns: 1_000,
            ino: 7,
        }
    }

    #[test]
    fn a_racy_file_found_unchanged_leaves_the_saved_index_alone() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("workspace");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.txt"), b"first").unwrap();
        let file = dir.path().join("index");
        let mut index = FileIndex::load(file.clone());
        index.scan(&root, false).unwrap();
        // Recorded within its mtime's tick, the file is racy (so it stays, however slowly
        // the test runs): the next walk reads it again.
        let entry = index.entries.get_mut("a.txt").unwrap();
        entry.recorded_ns = entry.mtime_ns;
        let recorded = entry.recorded_ns;
        index.changed = true;
        index.save().unwrap();
        let saved = std::fs::read(&file).unwrap();
        index.scan(&root, false).unwrap();
        assert!(index.entries["a.txt"].recorded_ns > recorded);
        assert!(!index.changed, "a confirmed entry made the index dirty");
        index.save().unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), saved);
        // A change is still saved.
        std::fs::write(root.join("a.txt"), b"second").unwrap();
        index.scan(&root, false).unwrap();
        assert!(index.changed);
        index.save().unwrap();
        let loaded = FileIndex::load(file);
        assert_eq!(loaded.entries["a.txt"].sha256, BlobHash::of(b"second"));
    }

    #[test]
    fn a_save_cut_short_loads_empty_never_partly() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("index");
        let mut index = FileIndex::load(file.clone());
        index.record("a.txt", &stat(1), BlobHash::of(b"a"));
        index.record("src/b.txt", &stat(2), BlobHash::of(b"bb"));
        index.save().unwrap();
        let whole = std::fs::read(&file).unwrap();
        assert_eq!(FileIndex::load(file.clone()).entries, index.entries);
        for cut in 0..whole.len() {
            std::fs::write(&file, &whole[..cut]).unwrap();
            let loaded = FileIndex::load(file.clone());
            assert!(
                loaded.entries.is_empty(),
                "{cut} bytes loaded {:?}",
                loaded.entries
            );
        }
        // Saved again over a longer file, it reads back as itself.
        std::fs::write(&file, [b' '; 4096]).unwrap();
        index.changed = true;
        index.save().unwrap();
        assert_eq!(FileIndex::load(file).entries, index.entries);
    }
}
