//! The per-lockfile dependency cache: `npm ci` runs once per `package-lock.json` hash into
//! `cache/node_modules/<sha256>/node_modules`, then each workspace gets a hard-linked copy
//! (its own directories, shared file contents). Cached files are made read-only and, when
//! the service is root, owned by `nobody`, so a confined process (no capabilities) cannot
//! change them in place for other sandboxes; it can still replace them in its own tree.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use draftsmith_core::BlobHash;
use draftsmith_tools::{CommandRequest, CommandRunner};
use tokio_util::sync::CancellationToken;

use crate::bwrap::{BwrapCommandRunner, BwrapProfile, Network};
use crate::enclosure::Enclosure;
use crate::error::SandboxError;
use crate::identity::CACHE_OWNER;
use crate::process::{ProcessGroups, UnconfinedCommandRunner};

/// Longest an install may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// The install: scripts never run (the lockfile comes from a draft an agent edited).
const INSTALL: &str = "npm ci --ignore-scripts --no-audit --no-fund --loglevel=error";
/// File in a workspace's `node_modules` naming the lockfile hash it was linked from.
const MARKER: &str = ".draftsmith-deps";
/// File in a cache entry whose modification time says when a workspace last used it.
const LAST_USED: &str = ".last-used";
/// A staging directory older than this is an install a crash abandoned (installs time out
/// long before).
const STAGING_GRACE: Duration = Duration::from_secs(2 * 3600);
/// How long a cached tree no workspace used is kept by default: a week.
pub(crate) const DEFAULT_IDLE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Installs dependency trees once per lockfile and links them into workspaces.
pub(crate) struct DependencyCache {
    dir: PathBuf,
    home: PathBuf,
    confine: Option<BwrapProfile>,
    /// The installs' own egress proxy (the lockfile's URLs are the agent's to write).
    proxy: crate::egress::InstallProxy,
    installing: Mutex<HashMap<BlobHash, Arc<tokio::sync::Mutex<()>>>>,
}

impl DependencyCache {
    /// A cache under `cache` (its `node_modules/` and npm's own `home/`); installs run
    /// under `bwrap` when given, with `hidden` covered, reaching the network as `egress`
    /// allows (`None`: the host's network).
    pub(crate) fn new(
        cache: &Path,
        bwrap: Option<PathBuf>,
        hidden: Vec<PathBuf>,
        egress: Option<crate::egress::EgressPolicy>,
    ) -> Self {
        let dir = cache.join("node_modules");
        let home = cache.join("home");
        let proxy = crate::egress::InstallProxy::new(cache.to_path_buf(), egress);
        let confine = bwrap.map(|bwrap| BwrapProfile {
            bwrap,
            writable: vec![home.clone()],
            readonly: Vec::new(),
            hidden,
            network: Network::Shared,
            identity: None,
        });
        Self {
            dir,
            home,
            confine,
            proxy,
            installing: Mutex::new(HashMap::new()),
        }
    }

    /// The installed `node_modules` for this lockfile, installing it first if needed.
    pub(crate) async fn ensure(
        &self,
        sha: &BlobHash,
        package_json: &[u8],
        lock: &[u8],
    ) -> Result<PathBuf, SandboxError> {
        let done = self.dir.join(sha.as_str());
        let modules = done.join("node_modules");
        if modules.is_dir() {
            mark_used(&done);
            return Ok(modules);
        }
        let gate = self
            .installing
            .lock()
            .map(|mut m| m.entry(sha.clone()).or_default().clone())
            .map_err(|_| SandboxError::Dependencies("cache lock poisoned".into()))?;
        let _held = gate.lock().await;
        if modules.is_dir() {
            return Ok(modules);
        }
        let staging = self.dir.join(format!(".staging-{}", uuid::Uuid::new_v4()));
        let result = self.install(&staging, package_json, lock).await;
        let result = match result {
            Ok(()) => publish(&staging, &done),
            Err(e) => Err(e),
        };
        if staging.exists() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        mark_used(&done);
        result.map(|()| modules)
    }

    /// Where the cached trees live, for [`collect_unused`].
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    async fn install(
        &self,
        staging: &Path,
        package_json: &[u8],
        lock: &[u8],
    ) -> Result<(), SandboxError> {
        for dir in [staging, self.home.as_path()] {
            std::fs::create_dir_all(dir).map_err(SandboxError::io(dir))?;
        }
        for (name, bytes) in [("package.json", package_json), ("package-lock.json", lock)] {
            let path = staging.join(name);
            std::fs::write(&path, bytes).map_err(SandboxError::io(&path))?;
        }
        let groups = ProcessGroups::default();
        let runner: Box<dyn CommandRunner> = match &self.confine {
            Some(profile) => {
                let mut profile = profile.clone();
                profile.writable.push(staging.to_path_buf());
                profile.network = self.proxy.network()?;
                Box::new(BwrapCommandRunner::new(
                    profile,
                    self.home.clone(),
                    groups,
                    Enclosure::unbounded(),
                ))
            }
            None => Box::new(UnconfinedCommandRunner::new(
                self.home.clone(),
                groups,
                Enclosure::unbounded(),
            )),
        };
        let started = Instant::now();
        let request = CommandRequest {
            command: INSTALL.into(),
            cwd: staging.to_path_buf(),
            timeout: INSTALL_TIMEOUT,
            max_output_bytes: 16 * 1024,
            env: Vec::new(),
        };
        let out = runner
            .run(request, CancellationToken::new())
            .await
            .map_err(|e| SandboxError::Process(e.message))?;
        if out.exit_code != Some(0) {
            return Err(SandboxError::Dependencies(out.output));
        }
        tracing::info!(ms = %started.elapsed().as_millis(), "installed dependencies into the cache");
        let modules = staging.join("node_modules");
        tokio::task::spawn_blocking(move || seal(&modules))
            .await
            .map_err(|e| SandboxError::Dependencies(e.to_string()))?
    }
}

/// Records that a workspace uses the entry `done` now.
fn mark_used(done: &Path) {
    if done.is_dir() {
        let _ = std::fs::write(done.join(LAST_USED), b"");
    }
}

/// Deletes the cached trees under `dir` that no workspace used for `idle`, and staging
/// directories a crash abandoned; returns the names of the trees deleted. Workspaces hold
/// hard links, so a tree they were linked from can go without breaking them.
pub(crate) fn collect_unused(dir: &Path, idle: Duration) -> Vec<String> {
    let now = std::time::SystemTime::now();
    let age = |path: &Path| {
        let modified = path.metadata().and_then(|m| m.modified()).ok()?;
        now.duration_since(modified).ok()
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let unused = if name.starts_with(".staging-") {
            age(&path).is_some_and(|a| a > STAGING_GRACE)
        } else {
            // An entry without a mark predates marking: its directory's time stands in.
            let marked = path.join(LAST_USED);
            let since = if marked.exists() {
                age(&marked)
            } else {
                age(&path)
            };
            since.is_some_and(|a| a > idle)
        };
        if !unused {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(entry = %name, "removed an unused dependency tree from the cache");
                if !name.starts_with(".staging-") {
                    removed.push(name);
                }
            }
            Err(e) => {
                tracing::warn!(entry = %name, error = %e, "cannot remove a cached dependency tree")
            }
        }
    }
    removed
}

/// Moves a finished install into place; losing a race to another process is fine.
fn publish(staging: &Path, done: &Path) -> Result<(), SandboxError> {
    match std::fs::rename(staging, done) {
        Ok(()) => Ok(()),
        Err(_) if done.join("node_modules").is_dir() => Ok(()),
        Err(e) => Err(SandboxError::io(done)(e)),
    }
}

/// Makes every cached file read-only (and owned by `nobody` when we are root).
fn seal(dir: &Path) -> Result<(), SandboxError> {
    let root = draftsmith_process::is_root();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(SandboxError::io(&dir))? {
            let entry = entry.map_err(SandboxError::io(&dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(SandboxError::io(&path))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let meta = entry.metadata().map_err(SandboxError::io(&path))?;
                let mode = meta.permissions().mode() & 0o555;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .map_err(SandboxError::io(&path))?;
                if root {
                    std::os::unix::fs::chown(&path, Some(CACHE_OWNER), Some(CACHE_OWNER))
                        .map_err(SandboxError::io(&path))?;
                }
            }
        }
    }
    Ok(())
}

/// Whether `workspace/node_modules` was already linked from this lockfile.
pub(crate) fn is_linked(workspace: &Path, sha: &BlobHash) -> bool {
    std::fs::read_to_string(workspace.join("node_modules").join(MARKER))
        .is_ok_and(|s| s.trim() == sha.as_str())
}

/// Replaces `workspace/node_modules` by a hard-linked copy of `modules`; returns how many
/// files it linked (copied instead across file systems).
pub(crate) fn link_into(
    modules: &Path,
    workspace: &Path,
    sha: &BlobHash,
) -> Result<usize, SandboxError> {
    let dest = workspace.join("node_modules");
    match dest.symlink_metadata() {
        Ok(meta) if meta.is_dir() => {
            draftsmith_tools::beneath::remove_dir_all(&dest).map_err(SandboxError::io(&dest))?;
        }
        Ok(_) => std::fs::remove_file(&dest).map_err(SandboxError::io(&dest))?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(SandboxError::io(&dest)(e)),
    }
    let mut linker = Linker {
        files: 0,
        copy: false,
    };
    linker.tree(modules, &dest)?;
    let marker = dest.join(MARKER);
    std::fs::write(&marker, sha.as_str()).map_err(SandboxError::io(&marker))?;
    Ok(linker.files)
}

struct Linker {
    files: usize,
    copy: bool,
}

impl Linker {
    fn tree(&mut self, from: &Path, to: &Path) -> Result<(), SandboxError> {
        std::fs::create_dir(to).map_err(SandboxError::io(to))?;
        for entry in std::fs::read_dir(from).map_err(SandboxError::io(from))? {
            let entry = entry.map_err(SandboxError::io(from))?;
            let src = entry.path();
            let dst = to.join(entry.file_name());
            let kind = entry.file_type().map_err(SandboxError::io(&src))?;
            if kind.is_dir() {
                self.tree(&src, &dst)?;
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&src).map_err(SandboxError::io(&src))?;
                std::os::unix::fs::symlink(target, &dst).map_err(SandboxError::io(&dst))?;
            } else if kind.is_file() {
                self.file(&src, &dst)?;
            }
        }
        Ok(())
    }

    fn file(&mut self, src: &Path, dst: &Path) -> Result<(), SandboxError> {
        if !self.copy {
            match std::fs::hard_link(src, dst) {
                Ok(()) => {
                    self.files += 1;
                    return Ok(());
                }
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => self.copy = true,
                Err(e) => return Err(SandboxError::io(dst)(e)),
            }
        }
        std::fs::copy(src, dst).map_err(SandboxError::io(dst))?;
        self.files += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn unused_trees_and_abandoned_installs_are_collected() {
        let dir = tempfile::tempdir().unwrap();
        let long_ago = std::time::SystemTime::now() - Duration::from_secs(30 * 24 * 3600);
        let entry = |name: &str, used: Option<std::time::SystemTime>| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.join("node_modules/pkg")).unwrap();
            std::fs::write(path.join("node_modules/pkg/index.js"), b"x").unwrap();
            seal(&path.join("node_modules")).unwrap();
            if let Some(time) = used {
                let file = std::fs::File::create(path.join(LAST_USED)).unwrap();
                file.set_modified(time).unwrap();
            }
            path
        };
        let stale = entry("stale", Some(long_ago));
        let fresh = entry("fresh", Some(std::time::SystemTime::now()));
        let unmarked = entry("unmarked", None);
        let staging = entry(".staging-crashed", None);
        std::fs::File::open(&staging)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        // A workspace linked from the stale tree keeps its files.
        let elsewhere = tempfile::tempdir().unwrap();
        let ws = elsewhere.path().to_path_buf();
        link_into(&stale.join("node_modules"), &ws, &BlobHash::of(b"l")).unwrap();

        let removed = collect_unused(dir.path(), DEFAULT_IDLE);
        assert_eq!(removed, vec!["stale".to_owned()]);
        assert!(!stale.exists() && !staging.exists());
        assert!(
            fresh.exists() && unmarked.exists(),
            "a fresh directory counts as used"
        );
        assert_eq!(
            std::fs::read(ws.join("node_modules/pkg/index.js")).unwrap(),
            b"x"
        );
        // Marking renews an entry.
        mark_used(&unmarked);
        assert!(collect_unused(dir.path(), Duration::from_secs(3600)).is_empty());
    }

    #[test]
    fn links_a_sealed_tree_with_its_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let modules = dir.path().join("cache/node_modules");
        std::fs::create_dir_all(modules.join("pkg/bin")).unwrap();
        std::fs::create_dir_all(modules.join(".bin")).unwrap();
        std::fs::write(modules.join("pkg/index.js"), b"x").unwrap();
        std::fs::write(modules.join("pkg/bin/cli.js"), b"#!/bin/sh").unwrap();
        std::fs::set_permissions(
            modules.join("pkg/bin/cli.js"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("../pkg/bin/cli.js", modules.join(".bin/cli")).unwrap();
        seal(&modules).unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("node_modules/stale")).unwrap();
        let sha = BlobHash::of(b"lock");
        assert!(!is_linked(&ws, &sha));
        assert_eq!(link_into(&modules, &ws, &sha).unwrap(), 2);
        assert!(is_linked(&ws, &sha));
        assert!(!ws.join("node_modules/stale").exists());
        let linked = ws.join("node_modules/pkg/index.js").metadata().unwrap();
        let cached = modules.join("pkg/index.js").metadata().unwrap();
        assert_eq!(linked.ino(), cached.ino());
        assert_eq!(linked.mode() & 0o777, 0o444);
        let cli = ws.join("node_modules/pkg/bin/cli.js").metadata().unwrap();
        assert_eq!(cli.mode() & 0o777, 0o555);
        assert_eq!(
            std::fs::read_link(ws.join("node_modules/.bin/cli")).unwrap(),
            Path::new("../pkg/bin/cli.js")
        );
    }
}
