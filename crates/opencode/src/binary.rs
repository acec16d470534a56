//! Where the `opencode` binary is: the configured path, else the project's pinned install
//! (`.tools/opencode`, made by `scripts/install-opencode`) found from the working directory,
//! the running executable or this source tree, else `opencode` on `PATH`.

use std::path::{Path, PathBuf};

/// What to tell someone whose machine has no OpenCode.
pub const INSTALL_HINT: &str = "run scripts/install-opencode";

/// The pinned install's binary, relative to the repository root.
pub const PINNED_RELATIVE_PATH: &str = ".tools/opencode/node_modules/.bin/opencode";

/// The `opencode-ai` version this crate is written and tested against (one place pins it:
/// `crates/opencode/OPENCODE_VERSION`, which the install script reads too).
pub fn pinned_version() -> &'static str {
    include_str!("../OPENCODE_VERSION").trim()
}

/// No usable binary; the message names every place looked at and how to install one, so
/// capabilities can report it as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the opencode binary was not found (looked at {}); {INSTALL_HINT}", list(.looked))]
pub struct MissingBinary {
    /// Every candidate tried.
    pub looked: Vec<PathBuf>,
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Finds the binary. A configured path is authoritative: when it is missing the answer is
/// an error, never a silent fallback to another version.
pub fn find_binary(configured: Option<&Path>) -> Result<PathBuf, MissingBinary> {
    let candidates = match configured {
        Some(path) => vec![path.to_path_buf()],
        None => default_candidates(),
    };
    match candidates.iter().find(|p| is_executable(p)) {
        Some(found) => Ok(found.clone()),
        None => Err(MissingBinary { looked: candidates }),
    }
}

/// The directory OpenCode is installed in, which a confinement must keep visible: the
/// npm prefix holding the `node_modules` the binary lives in (its platform package sits
/// beside it), else the directory of the resolved binary.
pub fn install_dir(binary: &Path) -> PathBuf {
    let resolved = binary
        .canonicalize()
        .unwrap_or_else(|_| binary.to_path_buf());
    let npm_prefix = |path: &Path| {
        path.ancestors()
            .find(|dir| dir.file_name().is_some_and(|n| n == "node_modules"))
            .and_then(Path::parent)
            .map(Path::to_path_buf)
    };
    npm_prefix(binary)
        .or_else(|| npm_prefix(&resolved))
        .or_else(|| resolved.parent().map(Path::to_path_buf))
        .unwrap_or(resolved)
}

fn default_candidates() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    // The source tree this crate was built from (tests, `cargo run`).
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    roots.extend(manifest.ancestors().map(Path::to_path_buf));
    let mut candidates: Vec<PathBuf> = Vec::new();
    for root in roots {
        let candidate = root.join(PINNED_RELATIVE_PATH);
        if !candidates.contains(&candidate) {
            candidates.push(candidate);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("opencode")));
    }
    candidates
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_path_is_authoritative() {
        let missing = Path::new("/nonexistent/opencode");
        let err = find_binary(Some(missing)).err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("/nonexistent/opencode"), "{message}");
        assert!(message.contains(INSTALL_HINT), "{message}");
    }

    #[test]
    fn the_install_dir_is_the_npm_prefix() {
        assert_eq!(
            install_dir(Path::new(
                "/opt/x/.tools/opencode/node_modules/.bin/opencode"
            )),
            Path::new("/opt/x/.tools/opencode")
        );
        assert_eq!(
            install_dir(Path::new("/nonexistent/bin/opencode")),
            Path::new("/nonexistent/bin")
        );
    }

    #[test]
    fn the_version_is_pinned_in_one_place() {
        assert!(
            pinned_version().split('.').count() == 3,
            "{}",
            pinned_version()
        );
    }
}
