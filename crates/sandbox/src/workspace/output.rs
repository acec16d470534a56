//! A build's output read back from the workspace (e.g. `dist/` for a release): regular files
//! only, symlinks never followed, and a total size bound so a hostile build cannot make the
//! service read without end.

use std::os::fd::AsFd;
use std::path::{Component, Path};

use draftsmith_tools::beneath;

use crate::error::SandboxError;

/// The files under `dir` (a relative directory of `root`), keyed by their `/`-separated path
/// under it and sorted; more than `max_bytes` in total is refused.
pub(crate) fn read(
    root: &Path,
    dir: &str,
    max_bytes: u64,
) -> Result<Vec<(String, Vec<u8>)>, SandboxError> {
    let relative = Path::new(dir);
    let safe = !dir.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !safe {
        return Err(SandboxError::PathBlocked {
            path: dir.to_owned(),
            reason: "an output directory is a relative path inside the workspace".into(),
        });
    }
    // Every directory on the way must be a real one, never a link the build planted, and
    // each is held open while the walk goes: the sandbox's processes may still be running.
    let not_a_dir = || SandboxError::PathBlocked {
        path: dir.to_owned(),
        reason: "the output directory is not a directory".into(),
    };
    let mut base = beneath::open_root(root).map_err(SandboxError::io(root))?;
    for part in dir.split('/').filter(|p| !p.is_empty() && *p != ".") {
        base = match beneath::open_dir(base.as_fd(), part) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SandboxError::NotFound(format!("{dir}/")));
            }
            Err(e) if beneath::is_gone(&e) => return Err(not_a_dir()),
            Err(e) => return Err(SandboxError::io(&root.join(dir))(e)),
        };
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut too_big = false;
    beneath::walk_files(base.as_fd(), &|_| true, &mut |_, _| {}, &mut |met| {
        let size = u64::try_from(met.stat.st_size).unwrap_or(u64::MAX);
        if too_big || total.saturating_add(size) > max_bytes {
            too_big = true;
            return Ok(());
        }
        // One byte past the bound is enough to refuse.
        let bytes = match met.read(max_bytes - total + 1) {
            Ok(bytes) => bytes,
            Err(e) if beneath::is_gone(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        total = total.saturating_add(bytes.len() as u64);
        too_big = total > max_bytes;
        out.push((met.rel.to_owned(), bytes));
        Ok(())
    })
    .map_err(SandboxError::io(&root.join(dir)))?;
    if too_big {
        return Err(SandboxError::Invalid(format!(
            "{dir}/ holds more than {max_bytes} bytes"
        )));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_files_skips_links_and_bounds_the_total() {
        let root = tempfile::tempdir().unwrap();
        let dist = root.path().join("dist");
        std::fs::create_dir_all(dist.join("assets")).unwrap();
        std::fs::write(dist.join("index.html"), b"<p>hi</p>").unwrap();
        std::fs::write(dist.join("assets/app.js"), b"1;").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dist.join("leak")).unwrap();
        let files = read(root.path(), "dist", 1024).unwrap();
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["assets/app.js", "index.html"]);
        assert_eq!(files[1].1, b"<p>hi</p>");
        assert!(matches!(
            read(root.path(), "dist", 5),
            Err(SandboxError::Invalid(_))
        ));
        for bad in ["../x", "/etc", ""] {
            assert!(matches!(
                read(root.path(), bad, 1024),
                Err(SandboxError::PathBlocked { .. })
            ));
        }
        std::os::unix::fs::symlink("/etc", root.path().join("out")).unwrap();
        assert!(matches!(
            read(root.path(), "out", 1024),
            Err(SandboxError::PathBlocked { .. })
        ));
        assert!(matches!(
            read(root.path(), "missing", 1024),
            Err(SandboxError::NotFound(_))
        ));
    }
}
