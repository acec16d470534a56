//! Which OpenCode a binary is, and whether draftsmith can drive it. The engine speaks the
//! HTTP API of the pinned major line; another major line (2.x moved every route under
//! `/api/*`) is refused when the binary is resolved, with a message that says why, instead
//! of failing at the server's start timeout.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::binary::{INSTALL_HINT, MissingBinary, find_binary, pinned_version};

/// How long `opencode --version` may take (a cold start of the binary on a busy machine).
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the resolved binary cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    /// No binary was found.
    #[error(transparent)]
    Missing(#[from] MissingBinary),
    /// The binary is of a major line this engine does not speak.
    #[error(
        "the opencode binary {} is version {found}, but draftsmith drives OpenCode {supported}.x \
         only (pinned {pinned}; another major line has another HTTP API, 2.x moved every route \
         under /api/*); point DRAFTSMITH_OPENCODE_BIN at a {supported}.x binary or {INSTALL_HINT}",
        path.display(), pinned = pinned_version()
    )]
    Unsupported {
        /// The binary.
        path: PathBuf,
        /// The version it reported.
        found: String,
        /// The major line supported.
        supported: u64,
    },
    /// The binary did not say which version it is.
    #[error(
        "the opencode binary {} did not report its version ({why}); draftsmith drives OpenCode \
         {}.x only; {INSTALL_HINT}", path.display(), major(pinned_version()).unwrap_or_default()
    )]
    Unknown {
        /// The binary.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
}

/// Finds the binary ([`find_binary`]) and checks its version ([`check_version`]).
pub fn resolve_binary(configured: Option<&Path>) -> Result<PathBuf, BinaryError> {
    let binary = find_binary(configured)?;
    check_version(&binary)?;
    Ok(binary)
}

/// The binary's version when its major line is the pinned one. The answer is remembered
/// per binary (path, size and modification time), so a server start pays for it once.
pub fn check_version(binary: &Path) -> Result<String, BinaryError> {
    static CHECKED: Mutex<Option<Checked>> = Mutex::new(None);
    let stamp = stamp(binary);
    if let Ok(cache) = CHECKED.lock()
        && let Some((seen, answer)) = cache.as_ref().and_then(|c| c.get(binary))
        && *seen == stamp
    {
        return answer.clone();
    }
    let answer = judge(binary);
    if let Ok(mut cache) = CHECKED.lock() {
        cache
            .get_or_insert_with(HashMap::new)
            .insert(binary.to_path_buf(), (stamp, answer.clone()));
    }
    answer
}

type Stamp = Option<(u64, SystemTime)>;
/// Each binary checked, with its stamp then and the answer.
type Checked = HashMap<PathBuf, (Stamp, Result<String, BinaryError>)>;

fn stamp(binary: &Path) -> Stamp {
    let meta = std::fs::metadata(binary).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

fn judge(binary: &Path) -> Result<String, BinaryError> {
    let found = match package_version(binary) {
        Some(version) => version,
        None => binary_version(binary).map_err(|why| BinaryError::Unknown {
            path: binary.to_path_buf(),
            why,
        })?,
    };
    let supported = major(pinned_version()).unwrap_or_default();
    if major(&found) == Some(supported) {
        Ok(found)
    } else {
        Err(BinaryError::Unsupported {
            path: binary.to_path_buf(),
            found,
            supported,
        })
    }
}

/// The version of the npm package an installed binary belongs to
/// (`…/node_modules/opencode-ai/bin/opencode` → `…/opencode-ai/package.json`): what
/// `--version` would print, without starting the binary (≈1 s of CPU).
fn package_version(binary: &Path) -> Option<String> {
    let resolved = binary.canonicalize().ok()?;
    let package = resolved.parent()?.parent()?;
    if package.parent()?.file_name()? != "node_modules"
        && package.parent()?.parent()?.file_name()? != "node_modules"
    {
        return None;
    }
    let text = std::fs::read_to_string(package.join("package.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    if !manifest["name"].as_str()?.contains("opencode") {
        return None;
    }
    let version = manifest["version"].as_str()?;
    major(version).map(|_| version.to_owned())
}

/// What `binary --version` prints (its first version-like word).
pub fn binary_version(binary: &Path) -> Result<String, String> {
    let mut child = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("`--version` could not start: {e}"))?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`--version` did not answer within {} s",
                    VERSION_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("`--version` could not be awaited: {e}")),
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    if !status.success() {
        return Err(format!("`--version` exited with {status}"));
    }
    parse_version(&out).ok_or_else(|| format!("`--version` printed {:?}", out.trim()))
}

/// The first word of `text` that looks like a version (`1.18.33`, `v2.0.0-beta.1`).
fn parse_version(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|w| w.trim_start_matches('v'))
        .find(|w| major(w).is_some() && w.contains('.'))
        .map(str::to_owned)
}

fn major(version: &str) -> Option<u64> {
    version.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_what_binaries_print() {
        assert_eq!(parse_version("1.18.33\n"), Some("1.18.33".into()));
        assert_eq!(
            parse_version("opencode v2.0.0-beta.1"),
            Some("2.0.0-beta.1".into())
        );
        assert_eq!(parse_version("no version here"), None);
        assert_eq!(parse_version("3"), None);
        assert_eq!(major(pinned_version()), Some(1));
    }
}
