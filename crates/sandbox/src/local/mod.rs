//! The in-process controller (the default deployment): sandboxes under
//! `data_dir/sandboxes`, the dependency cache under `data_dir/cache`, TTLs in memory and in
//! a state file per sandbox, commands confined by bubblewrap when it works.

mod ops;
mod sandbox;
mod service;

pub use service::ServiceLaunch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use draftsmith_tools::{CommandRunner, ToolLimits};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use self::sandbox::Sandbox;
use crate::bwrap::{BwrapCommandRunner, BwrapProfile, Network};
use crate::deps::DependencyCache;
use crate::error::SandboxError;
use crate::id::SandboxId;
use crate::isolation::{Isolation, IsolationMode};
use crate::process::{UnconfinedCommandRunner, kill_by_cwd};

/// Prefix of directories being deleted; never a valid sandbox id (ids have no dots).
const TRASH_PREFIX: &str = ".trash-";

/// Owns sandboxes on this host; usable directly (benchmarks, the remote server) or behind
/// `Arc<dyn SandboxController>`.
pub struct LocalController {
    root: PathBuf,
    cache: PathBuf,
    bwrap: Option<PathBuf>,
    network: Network,
    hidden: Vec<PathBuf>,
    limits: ToolLimits,
    deps: DependencyCache,
    /// How long a cached dependency tree no workspace used is kept.
    dependency_idle: Duration,
    sandboxes: Mutex<HashMap<SandboxId, Arc<Sandbox>>>,
}

impl LocalController {
    /// Opens `root` (sandboxes) and `cache` (dependencies), resolving `isolation` once and
    /// adopting sandboxes an earlier process left (they are reaped once expired).
    pub fn new(
        root: PathBuf,
        cache: PathBuf,
        isolation: IsolationMode,
    ) -> Result<Self, SandboxError> {
        for dir in [&root, &cache] {
            std::fs::create_dir_all(dir).map_err(SandboxError::io(dir))?;
        }
        let root = root.canonicalize().map_err(SandboxError::io(&root))?;
        let cache = cache.canonicalize().map_err(SandboxError::io(&cache))?;
        let bwrap = isolation.resolve()?;
        let hidden = vec![root.clone(), cache.clone()];
        let sandboxes = adopt(&root)?;
        Ok(Self {
            deps: DependencyCache::new(&cache, bwrap.clone(), hidden.clone()),
            root,
            cache,
            bwrap,
            network: Network::default(),
            hidden,
            limits: ToolLimits::default(),
            dependency_idle: crate::deps::DEFAULT_IDLE,
            sandboxes: Mutex::new(sandboxes),
        })
    }

    /// Gives sandboxes a private network (`--unshare-net`) instead of the host's.
    pub fn with_network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Also hides `path` (e.g. the whole data directory) from sandboxed processes.
    pub fn with_hidden_path(mut self, path: PathBuf) -> Self {
        let path = path.canonicalize().unwrap_or(path);
        self.hidden.push(path);
        self.deps = DependencyCache::new(&self.cache, self.bwrap.clone(), self.hidden.clone());
        self
    }

    /// How long a cached dependency tree that no workspace used stays (default a week);
    /// older ones go with each reaping.
    pub fn with_dependency_idle(mut self, idle: Duration) -> Self {
        self.dependency_idle = idle;
        self
    }

    /// Sets the bounds the toolpack applies inside sandboxes.
    pub fn with_tool_limits(mut self, limits: ToolLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Starts the periodic reaper; it ends when `stop` is cancelled.
    pub fn spawn_reaper(
        self: &Arc<Self>,
        interval: Duration,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        crate::reaper::spawn_reaper(self.clone(), interval, stop)
    }

    /// How many commands a sandbox has running, for tests and metrics.
    pub async fn running_commands(&self, id: &SandboxId) -> usize {
        let map = self.sandboxes.lock().await;
        map.get(id).map_or(0, |s| s.groups.len())
    }

    /// The live sandbox `id`, marked in use.
    async fn get(&self, id: &SandboxId) -> Result<Arc<Sandbox>, SandboxError> {
        let map = self.sandboxes.lock().await;
        let sandbox = map
            .get(id)
            .cloned()
            .ok_or_else(|| SandboxError::NotFound(id.to_string()))?;
        sandbox.in_use();
        Ok(sandbox)
    }

    /// The command runner confining this sandbox's processes.
    fn runner(&self, sandbox: &Sandbox) -> Arc<dyn CommandRunner> {
        match &self.bwrap {
            Some(bwrap) => {
                let profile = BwrapProfile {
                    bwrap: bwrap.clone(),
                    writable: vec![sandbox.workspace.clone(), sandbox.home.clone()],
                    readonly: Vec::new(),
                    hidden: self.hidden.clone(),
                    network: self.network,
                };
                Arc::new(BwrapCommandRunner::new(
                    profile,
                    sandbox.home.clone(),
                    sandbox.groups.clone(),
                ))
            }
            None => Arc::new(UnconfinedCommandRunner::new(
                sandbox.home.clone(),
                sandbox.groups.clone(),
            )),
        }
    }

    fn isolation_in_force(&self) -> Isolation {
        if self.bwrap.is_some() {
            Isolation::Bwrap
        } else {
            Isolation::None
        }
    }

    /// Removes every expired sandbox from `map` and stops it; returns what to delete.
    fn take_expired(
        &self,
        map: &mut HashMap<SandboxId, Arc<Sandbox>>,
    ) -> Vec<(SandboxId, Option<PathBuf>)> {
        let now = SystemTime::now();
        let expired: Vec<SandboxId> = map
            .iter()
            .filter(|(_, s)| s.is_expired(now))
            .map(|(id, _)| id.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|id| map.remove(&id))
            .map(|sandbox| (sandbox.id.clone(), self.terminate(&sandbox)))
            .collect()
    }

    /// Kills everything the sandbox runs and moves its directory aside (fast, under the
    /// map lock, so a new sandbox of the same id never races the deletion).
    fn terminate(&self, sandbox: &Sandbox) -> Option<PathBuf> {
        sandbox.stop.cancel();
        sandbox.groups.kill_all();
        kill_by_cwd(&sandbox.dir);
        let trash = self.root.join(format!(
            "{TRASH_PREFIX}{}-{}",
            sandbox.id,
            uuid::Uuid::new_v4().simple()
        ));
        match std::fs::rename(&sandbox.dir, &trash) {
            Ok(()) => Some(trash),
            Err(e) => {
                if sandbox.dir.exists() {
                    tracing::warn!(sandbox = %sandbox.id, error = %e, "cannot move a stopped sandbox aside");
                    return Some(sandbox.dir.clone());
                }
                None
            }
        }
    }
}

/// Deletes directories moved aside, off the async threads.
async fn delete_trash(paths: Vec<PathBuf>) {
    if paths.is_empty() {
        return;
    }
    let done = tokio::task::spawn_blocking(move || {
        for path in paths {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete a stopped sandbox");
            }
        }
    })
    .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "sandbox deletion task failed");
    }
}

/// Sandboxes left in `root` by an earlier process, and trash it did not finish deleting.
fn adopt(root: &Path) -> Result<HashMap<SandboxId, Arc<Sandbox>>, SandboxError> {
    let mut map = HashMap::new();
    for entry in std::fs::read_dir(root).map_err(SandboxError::io(root))? {
        let entry = entry.map_err(SandboxError::io(root))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TRASH_PREFIX) {
            let _ = std::fs::remove_dir_all(entry.path());
        } else if let Ok(id) = SandboxId::parse(name) {
            map.insert(id.clone(), Arc::new(Sandbox::load(root, &id)));
        }
    }
    Ok(map)
}

impl std::fmt::Debug for LocalController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalController")
            .field("root", &self.root)
            .field("isolation", &self.isolation_in_force())
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}
