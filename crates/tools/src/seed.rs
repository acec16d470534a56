//! Files the service itself writes into a workspace or a sandbox HOME (the OpenCode tools,
//! the agent contract): the agent can plant symlinks there, and the service runs outside the
//! sandbox's confinement, so no symlink is ever followed on the way — every directory on the
//! path must be a real one, and a symlink at the file is refused. Unlike the agent's writes,
//! generated directories (the contract lives under `.cache/`) are allowed.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use crate::error::ToolError;
use crate::fsio::{holds, io_failed, write_atomic};

/// Writes `content` at `relative` below `root`, creating missing directories, without
/// following any symlink. Refused when `relative` is not a plain relative path or when a
/// symlink or a non-directory stands on the way.
/// A file that already holds exactly `content` is left as it is (most seedings repeat the
/// last one: a new file per run costs a new inode).
pub fn write_service_file(root: &Path, relative: &str, content: &[u8]) -> Result<(), ToolError> {
    let (dirs, name) = split(relative)?;
    let dir = ensure_real_dirs(root, &dirs, relative)?;
    let file = dir.join(name);
    if holds(root, &file, content) {
        return Ok(());
    }
    write_atomic(root, &file, relative, content)
}

/// Creates `relative` below `root` as a real directory (and its missing parents), refusing
/// any symlink on the way; returns its path.
pub fn ensure_service_dir(root: &Path, relative: &str) -> Result<PathBuf, ToolError> {
    let (mut dirs, name) = split(relative)?;
    dirs.push(name);
    ensure_real_dirs(root, &dirs, relative)
}

/// The directories of `relative` and its last component.
fn split(relative: &str) -> Result<(Vec<String>, String), ToolError> {
    let refused =
        || ToolError::blocked("path", format!("{relative:?} is not a plain relative path"));
    let mut parts = Vec::new();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().ok_or_else(refused)?.to_owned()),
            _ => return Err(refused()),
        }
    }
    let name = parts.pop().ok_or_else(refused)?;
    Ok((parts, name))
}

fn ensure_real_dirs(root: &Path, dirs: &[String], shown: &str) -> Result<PathBuf, ToolError> {
    let mut current = root.to_path_buf();
    for part in dirs {
        current.push(part);
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(ToolError::blocked(
                    "path",
                    format!(
                        "{} is a symbolic link; {shown} is not written through it",
                        current.display()
                    ),
                ));
            }
            Ok(_) => {
                return Err(ToolError::failed(format!(
                    "{} is in the way of {shown}: not a directory",
                    current.display()
                )));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // `create_dir` does not follow a symlink created meanwhile at this name.
                if let Err(e) = std::fs::create_dir(&current)
                    && e.kind() != ErrorKind::AlreadyExists
                {
                    return Err(io_failed("create directory", shown, &e));
                }
                let meta = std::fs::symlink_metadata(&current)
                    .map_err(|e| io_failed("inspect", shown, &e))?;
                if !meta.is_dir() {
                    return Err(ToolError::blocked(
                        "path",
                        format!("{} changed under the write of {shown}", current.display()),
                    ));
                }
            }
            Err(e) => return Err(io_failed("inspect", shown, &e)),
        }
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_file_holding_the_content_already_is_left_alone() {
        use std::os::unix::fs::MetadataExt;
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path().join("ws");
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join(".cache/c.json");
        write_service_file(&root, ".cache/c.json", b"{\"a\":1}").unwrap();
        let first = std::fs::metadata(&file).unwrap().ino();
        write_service_file(&root, ".cache/c.json", b"{\"a\":1}").unwrap();
        assert_eq!(
            std::fs::metadata(&file).unwrap().ino(),
            first,
            "not replaced"
        );
        // Other content (shorter, or of the same length) replaces it.
        write_service_file(&root, ".cache/c.json", b"{}").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"{}");
        write_service_file(&root, ".cache/c.json", b"[]").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"[]");
        // A link holding the content is still refused, and what it points at untouched.
        let outside = scratch.path().join("outside.json");
        std::fs::write(&outside, b"[]").unwrap();
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(&outside, &file).unwrap();
        let err = write_service_file(&root, ".cache/c.json", b"[]").unwrap_err();
        assert!(err.message.contains("symbolic link"), "{}", err.message);
        assert_eq!(std::fs::read(&outside).unwrap(), b"[]");
    }

    #[test]
    fn writes_below_real_directories_only() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path().join("ws");
        let outside = scratch.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();

        write_service_file(&root, ".cache/opencode/contract.json", b"{}").unwrap();
        assert_eq!(
            std::fs::read(root.join(".cache/opencode/contract.json")).unwrap(),
            b"{}"
        );

        // A symlinked directory anywhere on the way is refused, and nothing lands outside.
        std::os::unix::fs::symlink(&outside, root.join(".opencode")).unwrap();
        let err = write_service_file(&root, ".opencode/tools/a.ts", b"x").unwrap_err();
        assert!(err.message.contains("symbolic link"), "{}", err.message);
        assert!(ensure_service_dir(&root, ".opencode/tools").is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

        // A symlink at the file itself is refused too (a dangling one would create a file
        // wherever it points).
        std::os::unix::fs::symlink(outside.join("planted"), root.join(".cache/x.json")).unwrap();
        assert!(write_service_file(&root, ".cache/x.json", b"x").is_err());
        assert!(!outside.join("planted").exists());

        for bad in ["", "/etc/passwd", "../x", "a/../../x"] {
            assert!(write_service_file(&root, bad, b"x").is_err(), "{bad}");
        }
    }
}
