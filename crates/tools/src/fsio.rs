//! File writes that never follow a symlink and never leave a half-written file: content goes
//! to a fresh temporary file beside the target, which is then renamed over it.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::beneath;
use crate::error::ToolError;
use crate::policy::relative;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates the missing directories of `dir` below `root`, returning those it created
/// (outermost first) so a rollback can remove them again; no link on the way is followed.
pub(crate) fn create_parents(root: &Path, dir: &Path) -> Result<Vec<PathBuf>, ToolError> {
    beneath::make_missing_dirs(root, dir).map_err(|e| {
        let shown = relative(root, dir);
        if beneath::is_gone(&e) {
            ToolError::failed(format!(
                "{shown}: a part of it exists and is not a directory"
            ))
        } else {
            io_failed("create directory", &shown, &e)
        }
    })
}

/// Removes directories created by [`create_parents`], innermost first, if they are empty.
pub(crate) fn remove_dirs(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = fs::remove_dir(dir);
    }
}

/// Whether the file at `path` (below `root`) is a regular file holding exactly `content`,
/// read without following a link on the way or at it (a link, or anything unreadable, is
/// not).
pub(crate) fn holds(root: &Path, path: &Path, content: &[u8]) -> bool {
    let Ok((dir, name)) = beneath::parent_of(root, path) else {
        return false;
    };
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::openat(&dir, name.as_str(), flags, Mode::empty()) else {
        return false;
    };
    let same_size = rustix::fs::fstat(&fd).is_ok_and(|stat| {
        FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
            && u64::try_from(stat.st_size).is_ok_and(|size| size == content.len() as u64)
    });
    if !same_size {
        return false;
    }
    let mut held = Vec::with_capacity(content.len());
    std::io::Read::read_to_end(&mut File::from(fd), &mut held).is_ok() && held == content
}

/// Replaces (or creates) the file at `path` (below `root`) with `content` without following
/// a symlink there, keeping the permissions of the file it replaces. The directories on the
/// way are opened one by one without following links (see [`crate::beneath`]): a sandboxed
/// process swapping one for a link meanwhile makes the write fail, never land outside. Not
/// synced to disk: a workspace is scratch, and what lasts is what a run lands in the store.
pub(crate) fn write_atomic(
    root: &Path,
    path: &Path,
    shown: &str,
    content: &[u8],
) -> Result<(), ToolError> {
    let (dir, name) = beneath::parent_of(root, path).map_err(|e| changed_on_the_way(shown, &e))?;
    let name = name.as_str();
    let previous = match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                return Err(ToolError::blocked(
                    "path",
                    format!("{shown} is a symbolic link"),
                ));
            }
            FileType::Directory => {
                return Err(ToolError::failed(format!(
                    "{shown} is a directory, not a file"
                )));
            }
            _ => Some(Mode::from_raw_mode(stat.st_mode)),
        },
        Err(Errno::NOENT) => None,
        Err(e) => return Err(io_failed("inspect", shown, &e.into())),
    };
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = format!(".{name}.draftsmith-{}-{n}.tmp", std::process::id());
    let result = (|| -> std::io::Result<()> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, temp.as_str(), flags, Mode::from_raw_mode(0o644))?;
        let mut file = File::from(fd);
        file.write_all(content)?;
        if let Some(mode) = previous {
            rustix::fs::fchmod(&file, mode)?;
        }
        beneath::replace(dir.as_fd(), temp.as_str(), name, previous.is_some())
    })();
    result.map_err(|e| {
        let _ = rustix::fs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
        io_failed("write", shown, &e)
    })
}

/// Reads a regular file of at most `max_bytes` below `root`, refusing symlinks and
/// oversized files.
pub(crate) fn read_bounded(
    root: &Path,
    path: &Path,
    shown: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, ToolError> {
    use std::io::Read;
    let file = beneath::open_in(root, path, OFlags::RDONLY).map_err(|e| match e.kind() {
        ErrorKind::NotFound => ToolError::failed(format!("{shown} does not exist")),
        _ => changed_on_the_way(shown, &e),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| io_failed("inspect", shown, &e))?;
    if meta.is_dir() {
        return Err(ToolError::failed(format!(
            "{shown} is a directory, not a file"
        )));
    }
    if meta.len() > max_bytes as u64 {
        return Err(ToolError::failed(format!(
            "{shown} is {} bytes; files over {max_bytes} bytes cannot be edited with this tool",
            meta.len()
        )));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_failed("read", shown, &e))?;
    Ok(buf)
}

/// A failure to open the way to `shown`: a link where the policy saw a directory is refused
/// as a path, anything else is an I/O failure.
pub(crate) fn changed_on_the_way(shown: &str, error: &std::io::Error) -> ToolError {
    if beneath::is_gone(error) {
        ToolError::blocked(
            "path",
            format!("a directory on the way to {shown} is missing or became a link"),
        )
    } else {
        io_failed("open", shown, error)
    }
}

/// An I/O failure as a tool failure naming the operation and path.
pub(crate) fn io_failed(what: &str, shown: &str, error: &std::io::Error) -> ToolError {
    ToolError::failed(format!("cannot {what} {shown}: {error}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// What a sandboxed process can do between the tool's check of a path and its write:
    /// turn a directory on the way into a link out of the workspace.
    #[test]
    fn a_directory_turned_into_a_link_after_the_check_is_not_written_through() {
        let base = tempfile::tempdir().unwrap();
        let (root, outside) = (base.path().join("ws"), base.path().join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("src")).unwrap();

        let refused = write_atomic(&root, &root.join("src/app.js"), "src/app.js", b"x");
        assert!(refused.unwrap_err().message.contains("became a link"));
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());

        std::fs::remove_file(root.join("src")).unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        write_atomic(&root, &root.join("src/app.js"), "src/app.js", b"x").unwrap();
        assert_eq!(std::fs::read(root.join("src/app.js")).unwrap(), b"x");
    }
}
