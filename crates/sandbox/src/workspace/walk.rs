//! The one walk of a workspace: generated and dependency directories are pruned (never
//! entered), symlinks and generated files skipped, so its cost is the app's own files. The
//! sandbox's processes may be running while it goes, so it never resolves a path: each
//! directory is held open and looked into by name (`draftsmith_tools::beneath`).

use std::fs::Metadata;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use draftsmith_core::path::{is_blocked_dir, is_blocked_file};
use draftsmith_tools::beneath;

use crate::error::SandboxError;

/// Suffix of the temporary files a refresh writes before renaming them into place.
pub(crate) const TMP_SUFFIX: &str = ".draftsmith-tmp";

/// What the index compares of a file's `lstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    pub(crate) ino: u64,
}

impl FileStat {
    pub(crate) fn of(stat: &rustix::fs::Stat) -> Self {
        let nanos = i64::try_from(stat.st_mtime_nsec).unwrap_or(0);
        Self {
            size: u64::try_from(stat.st_size).unwrap_or(0),
            mtime_ns: stat
                .st_mtime
                .saturating_mul(1_000_000_000)
                .saturating_add(nanos),
            ino: stat.st_ino,
        }
    }

    pub(crate) fn of_metadata(meta: &Metadata) -> Self {
        Self {
            size: meta.size(),
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
            ino: meta.ino(),
        }
    }
}

/// A regular file found in the workspace.
pub(crate) struct Found {
    /// Relative `/`-separated path.
    pub(crate) rel: String,
    /// Its `lstat` as the walk saw it.
    pub(crate) stat: FileStat,
    /// Its content, when the walk's caller asked for it.
    pub(crate) content: Option<Vec<u8>>,
}

/// Every regular file under `root` outside pruned directories; the content of those
/// `wants` asks for is read on the way (a file gone meanwhile is left out). `entered` is
/// shown each directory walked, held open, before it is read.
pub(crate) fn walk(
    root: &Path,
    wants: &dyn Fn(&str, &FileStat) -> bool,
    entered: &mut dyn FnMut(BorrowedFd<'_>, &str),
) -> Result<Vec<Found>, SandboxError> {
    let fd = match beneath::open_root(root) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SandboxError::io(root)(e)),
    };
    let mut out = Vec::new();
    let enter = |name: &str| !is_blocked_dir(name);
    beneath::walk_files(fd.as_fd(), &enter, entered, &mut |met| {
        if is_skipped_file(met.name) {
            return Ok(());
        }
        let stat = FileStat::of(met.stat);
        let content = if wants(met.rel, &stat) {
            match met.read(u64::MAX) {
                Ok(bytes) => Some(bytes),
                Err(e) if beneath::is_gone(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        out.push(Found {
            rel: met.rel.to_owned(),
            stat,
            content,
        });
        Ok(())
    })
    .map_err(SandboxError::io(root))?;
    Ok(out)
}

/// Files no walk reports: blocked names and a refresh's temporary files.
pub(crate) fn is_skipped_file(name: &str) -> bool {
    is_blocked_file(name) || name.ends_with(TMP_SUFFIX)
}
