//! File writes that never follow a symlink and never leave a half-written file: content goes
//! to a fresh temporary file beside the target, which is then renamed over it.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ToolError;
use crate::policy::relative;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Creates the missing directories of `dir` below `root`, returning those it created
/// (outermost first) so a rollback can remove them again.
pub(crate) fn create_parents(root: &Path, dir: &Path) -> Result<Vec<PathBuf>, ToolError> {
    let mut missing = Vec::new();
    let mut probe = dir;
    while probe != root && probe.starts_with(root) {
        match fs::symlink_metadata(probe) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(ToolError::failed(format!(
                    "{} exists and is not a directory",
                    relative(root, probe)
                )));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => missing.push(probe.to_path_buf()),
            Err(e) => return Err(io_failed("inspect", &relative(root, probe), &e)),
        }
        let Some(parent) = probe.parent() else { break };
        probe = parent;
    }
    missing.reverse();
    for (index, path) in missing.iter().enumerate() {
        if let Err(e) = fs::create_dir(path) {
            remove_dirs(&missing[..index]);
            return Err(io_failed("create directory", &relative(root, path), &e));
        }
    }
    Ok(missing)
}

/// Removes directories created by [`create_parents`], innermost first, if they are empty.
pub(crate) fn remove_dirs(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = fs::remove_dir(dir);
    }
}

/// Replaces (or creates) the file at `path` with `content` without following a symlink there,
/// keeping the permissions of the file it replaces. Not synced to disk: a workspace is
/// scratch, and what lasts is what a run lands in the store.
pub(crate) fn write_atomic(path: &Path, shown: &str, content: &[u8]) -> Result<(), ToolError> {
    let dir = path
        .parent()
        .ok_or_else(|| ToolError::failed(format!("{shown} has no parent directory")))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let previous = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(ToolError::blocked(
                "path",
                format!("{shown} is a symbolic link"),
            ));
        }
        Ok(meta) if meta.is_dir() => {
            return Err(ToolError::failed(format!(
                "{shown} is a directory, not a file"
            )));
        }
        Ok(meta) => Some(meta.permissions()),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(io_failed("inspect", shown, &e)),
    };
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.draftsmith-{}-{n}.tmp", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        file.write_all(content)?;
        if let Some(permissions) = previous {
            file.set_permissions(permissions)?;
        }
        fs::rename(&temp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temp);
        io_failed("write", shown, &e)
    })
}

/// Reads a regular file of at most `max_bytes`, refusing symlinks and oversized files.
pub(crate) fn read_bounded(
    path: &Path,
    shown: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, ToolError> {
    use std::io::Read;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => ToolError::failed(format!("{shown} does not exist")),
            _ => io_failed("open", shown, &e),
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

/// An I/O failure as a tool failure naming the operation and path.
pub(crate) fn io_failed(what: &str, shown: &str, error: &std::io::Error) -> ToolError {
    ToolError::failed(format!("cannot {what} {shown}: {error}"))
}
