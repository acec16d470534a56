//! A build's output read back from the workspace (e.g. `dist/` for a release): regular files
//! only, symlinks never followed, and a total size bound so a hostile build cannot make the
//! service read without end.

use std::path::{Component, Path};

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
    // Every directory on the way must be a real one, never a link the build planted.
    let mut base = root.to_path_buf();
    for part in relative.components() {
        base.push(part);
        let meta = base.symlink_metadata().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SandboxError::NotFound(format!("{dir}/")),
            _ => SandboxError::io(&base)(e),
        })?;
        if !meta.file_type().is_dir() {
            return Err(SandboxError::PathBlocked {
                path: dir.to_owned(),
                reason: "the output directory is not a directory".into(),
            });
        }
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![(base, String::new())];
    while let Some((path, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&path).map_err(SandboxError::io(&path))? {
            let entry = entry.map_err(SandboxError::io(&path))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type().map_err(SandboxError::io(&entry.path()))?;
            if kind.is_dir() {
                stack.push((entry.path(), rel));
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path()).map_err(SandboxError::io(&entry.path()))?;
                total += bytes.len() as u64;
                if total > max_bytes {
                    return Err(SandboxError::Invalid(format!(
                        "{dir}/ holds more than {max_bytes} bytes"
                    )));
                }
                out.push((rel, bytes));
            }
        }
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
