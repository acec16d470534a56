//! Who a sandbox's processes are. When the service runs as root, each confined sandbox
//! gets a host uid (and gid) of its own from `[sandbox.identity]`'s range, so nothing
//! root-only is readable, sandboxes cannot signal or read each other, and the shared
//! dependency cache (read-only files owned by `nobody`) cannot be changed in place. Before
//! a process starts, what the service wrote into the sandbox's directories is handed over
//! to that uid. A service that is not root runs sandboxes as itself, as before.

use std::os::fd::AsFd;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::SandboxError;

/// Owner of the dependency cache's shared files (`nobody`); never handed over.
pub(crate) const CACHE_OWNER: u32 = 65534;

/// `[sandbox.identity]`: the host uids sandboxes run as when the service is root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// First uid (and gid) of the range (`DRAFTSMITH_SANDBOX_UID_BASE`).
    pub uid_base: u32,
    /// How many there are; 0 runs sandboxes as the service's own uid
    /// (`DRAFTSMITH_SANDBOX_UID_COUNT`).
    pub uid_count: u32,
}

impl Default for IdentityConfig {
    /// Above the ranges Debian gives users and subordinate ids of the first users.
    fn default() -> Self {
        Self {
            uid_base: 1_000_000,
            uid_count: 65_536,
        }
    }
}

impl IdentityConfig {
    /// The range must not reach root, `nobody` or past the 32-bit uid space.
    pub fn check(&self) -> Result<(), SandboxError> {
        if self.uid_count == 0 {
            return Ok(());
        }
        let end = u64::from(self.uid_base) + u64::from(self.uid_count);
        let cache = u64::from(CACHE_OWNER);
        if self.uid_base == 0
            || end > u64::from(u32::MAX)
            || (u64::from(self.uid_base) <= cache && cache < end)
        {
            return Err(SandboxError::Invalid(format!(
                "sandbox uids {}..{end} must not include 0, {CACHE_OWNER} (nobody) or pass 2^32-1",
                self.uid_base
            )));
        }
        Ok(())
    }

    /// The range in force: `None` unless the service is root, confinement is on and the
    /// range is not empty.
    pub(crate) fn resolve(&self, confined: bool) -> Result<Option<UidRange>, SandboxError> {
        self.check()?;
        let root = draftsmith_process::is_root();
        Ok(
            (root && confined && self.uid_count > 0).then_some(UidRange {
                base: self.uid_base,
                count: self.uid_count,
            }),
        )
    }
}

/// The uids handed out to sandboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UidRange {
    base: u32,
    count: u32,
}

impl UidRange {
    /// The lowest uid of the range no live sandbox holds.
    pub(crate) fn allocate(&self, used: &[u32]) -> Result<u32, SandboxError> {
        (self.base..self.base.saturating_add(self.count))
            .find(|uid| !used.contains(uid))
            .ok_or_else(|| {
                SandboxError::Process(format!(
                    "all {} sandbox uids from {} are in use",
                    self.count, self.base
                ))
            })
    }

    /// Whether `uid` belongs to the range (a state file is not trusted blindly).
    pub(crate) fn contains(&self, uid: u32) -> bool {
        uid >= self.base && uid - self.base < self.count
    }
}

/// Makes everything under `dir` owned by `uid` (and gid `uid`), never following a symlink
/// and never touching a shared cache file; `node_modules` trees are entered only when
/// `deep` (right after linking), since what is linked there later is the sandbox's own.
pub(crate) fn hand_over(dir: &Path, uid: u32, deep: bool) -> Result<(), SandboxError> {
    // The walk holds each directory open and acts on names relative to it: the sandbox's
    // processes may be running and swapping directories for links while it goes.
    let fd = match draftsmith_tools::beneath::open_root(dir) {
        Ok(fd) => fd,
        Err(e) if draftsmith_tools::beneath::is_gone(&e) => return Ok(()),
        Err(e) => return Err(SandboxError::io(dir)(e)),
    };
    let (owner, group) = (
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(uid),
    );
    let stat = rustix::fs::fstat(&fd).map_err(|e| SandboxError::io(dir)(e.into()))?;
    if stat.st_uid != uid || stat.st_gid != uid {
        rustix::fs::fchown(&fd, Some(owner), Some(group))
            .map_err(|e| SandboxError::io(dir)(e.into()))?;
    }
    let enter = |name: &str| deep || name != "node_modules";
    draftsmith_tools::beneath::chown_tree(fd.as_fd(), uid, CACHE_OWNER, &enter)
        .map_err(SandboxError::io(dir))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ranges_allocate_the_lowest_free_uid() {
        let range = UidRange {
            base: 1000,
            count: 3,
        };
        assert_eq!(range.allocate(&[]).unwrap(), 1000);
        assert_eq!(range.allocate(&[1000, 1002]).unwrap(), 1001);
        assert!(range.allocate(&[1000, 1001, 1002]).is_err());
        assert!(range.contains(1002) && !range.contains(1003) && !range.contains(999));
    }

    #[test]
    fn ranges_may_not_include_root_or_nobody() {
        let bad = |base, count| {
            IdentityConfig {
                uid_base: base,
                uid_count: count,
            }
            .check()
            .is_err()
        };
        assert!(bad(0, 10));
        assert!(bad(65_000, 1000));
        assert!(bad(u32::MAX - 5, 10));
        assert!(!bad(1_000_000, 65_536));
        assert!(!bad(0, 0));
    }
}
