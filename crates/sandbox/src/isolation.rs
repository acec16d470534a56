//! Which confinement is in force: bubblewrap where it works, otherwise none with a warning
//! (`APPS_CODING_AGENT_SANDBOX_ISOLATION=auto|bwrap|none`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::SandboxError;

/// The confinement actually applied to a sandbox's processes, reported in capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Every process runs under bubblewrap.
    Bwrap,
    /// Processes run unconfined on the host (own process groups only).
    None,
}

impl Isolation {
    /// The configuration and capabilities spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bwrap => "bwrap",
            Self::None => "none",
        }
    }
}

/// What the operator asked for; [`IsolationMode::Auto`] resolves to what works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IsolationMode {
    /// Bubblewrap if a probe succeeds, otherwise none with a warning.
    #[default]
    Auto,
    /// Bubblewrap or fail at start.
    Bwrap,
    /// Unconfined, for development hosts without user namespaces.
    None,
}

impl std::str::FromStr for IsolationMode {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "bwrap" => Ok(Self::Bwrap),
            "none" => Ok(Self::None),
            other => Err(SandboxError::Invalid(format!(
                "isolation must be auto, bwrap or none, not {other:?}"
            ))),
        }
    }
}

impl IsolationMode {
    /// Resolves the mode once at start: the bwrap binary to use, or `None` for unconfined.
    pub(crate) fn resolve(self) -> Result<Option<PathBuf>, SandboxError> {
        match self {
            Self::None => Ok(None),
            Self::Bwrap => probe().map(Some).map_err(SandboxError::Isolation),
            Self::Auto => match probe() {
                Ok(path) => Ok(Some(path)),
                Err(why) => {
                    tracing::warn!(
                        reason = %why,
                        "bubblewrap does not work here; sandbox processes run UNCONFINED"
                    );
                    Ok(None)
                }
            },
        }
    }
}

/// Finds `bwrap` and checks it can build the namespaces the sandbox uses.
fn probe() -> Result<PathBuf, String> {
    let path =
        find_program("bwrap").ok_or("bwrap is not installed (Debian package `bubblewrap`)")?;
    let out = Command::new(&path)
        .args(["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"])
        .args(["--unshare-pid", "--unshare-ipc", "--unshare-uts"])
        .args([
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    if out.status.success() {
        Ok(path)
    } else {
        Err(format!(
            "{} failed ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The first file named `program` in a directory of the PATH, else in `/usr/bin` (Debian's
/// place for the packages the sandbox needs, when the PATH is narrower).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    from_path.or_else(|| {
        let fixed = Path::new("/usr/bin").join(program);
        fixed.is_file().then_some(fixed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_setting() {
        assert_eq!(
            "auto".parse::<IsolationMode>().ok(),
            Some(IsolationMode::Auto)
        );
        assert_eq!(
            "BWRAP".parse::<IsolationMode>().ok(),
            Some(IsolationMode::Bwrap)
        );
        assert_eq!(
            "none".parse::<IsolationMode>().ok(),
            Some(IsolationMode::None)
        );
        assert!("docker".parse::<IsolationMode>().is_err());
        assert_eq!(Isolation::Bwrap.as_str(), "bwrap");
    }

    #[test]
    fn none_needs_no_probe() {
        assert!(matches!(IsolationMode::None.resolve(), Ok(None)));
    }
}
