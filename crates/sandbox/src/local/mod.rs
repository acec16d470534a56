//! The in-process controller (the default deployment): sandboxes under
//! `data_dir/sandboxes`, the dependency cache under `data_dir/cache`, TTLs in memory and in
//! a state file per sandbox, commands confined by bubblewrap when it works.

mod dev;
mod network;
mod ops;
mod sandbox;
mod service;
mod spares;
mod trash;

pub use service::{ServiceGate, ServiceLaunch, ServiceNetwork};
pub use spares::SpareTemplate;
pub(crate) use trash::{Trash, delete_trash};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use draftsmith_tools::{CommandRunner, ToolLimits};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use self::sandbox::Sandbox;
use self::spares::{SPARE_PREFIX, SparePool};
use crate::bwrap::{BwrapCommandRunner, BwrapProfile};
use crate::deps::DependencyCache;
use crate::egress::EgressPolicy;
use crate::enclosure::Enclosure;
use crate::error::SandboxError;
use crate::id::SandboxId;
use crate::identity::{IdentityConfig, UidRange};
use crate::isolation::{Isolation, IsolationMode};
use crate::limits::{Enforcement, Limits, LimitsReport, SandboxCgroup};
use crate::process::{UnconfinedCommandRunner, kill_by_cwd};

/// Prefix of directories being deleted; never a valid sandbox id (ids have no dots).
const TRASH_PREFIX: &str = ".trash-";

/// Owns sandboxes on this host; usable directly (benchmarks, the remote server) or behind
/// `Arc<dyn SandboxController>`.
pub struct LocalController {
    root: PathBuf,
    cache: PathBuf,
    bwrap: Option<PathBuf>,
    /// What sandboxes may reach; `None` shares the host's network (benchmark baselines).
    egress: Option<EgressPolicy>,
    /// The network (proxy, namespace) of each live sandbox that has used it.
    nets: std::sync::Mutex<HashMap<String, network::SandboxNet>>,
    /// Whether each sandbox gets one persistent network namespace (the service can make
    /// them), rather than one per process.
    own_netns: bool,
    hidden: Vec<PathBuf>,
    limits: ToolLimits,
    /// How sandboxes' resources are bounded, resolved at start.
    enforcement: Enforcement,
    /// The uids sandboxes run as, when they get their own.
    uids: Option<UidRange>,
    /// `isolation = "bwrap"`: a limit that cannot be enforced is an error.
    strict: bool,
    deps: DependencyCache,
    /// How long a cached dependency tree no workspace used is kept.
    dependency_idle: Duration,
    sandboxes: Mutex<HashMap<SandboxId, Arc<Sandbox>>>,
    /// Sandboxes made ahead per template, claimed by new sandboxes.
    spares: Arc<SparePool>,
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
        let strict = isolation == IsolationMode::Bwrap;
        let uids = IdentityConfig::default().resolve(bwrap.is_some())?;
        let enforcement =
            Enforcement::resolve(Limits::default(), &tag(&root), uids.is_some(), strict)?;
        let sandboxes = adopt(&root, uids)?;
        let egress = Some(EgressPolicy::default());
        if bwrap.is_some() {
            network::require_socat()?;
        }
        let own_netns = bwrap.is_some() && network::can_make_netns();
        Ok(Self {
            deps: DependencyCache::new(&cache, bwrap.clone(), hidden.clone(), egress.clone()),
            root,
            cache,
            bwrap,
            egress,
            nets: std::sync::Mutex::default(),
            own_netns,
            hidden,
            limits: ToolLimits::default(),
            enforcement,
            uids,
            strict,
            dependency_idle: crate::deps::DEFAULT_IDLE,
            sandboxes: Mutex::new(sandboxes),
            spares: Arc::default(),
        })
    }

    /// Keeps `count` spare sandboxes of each of `templates` made ahead (see
    /// [`SpareTemplate`]), so a new sandbox of one is a rename rather than a fill; the
    /// first are made now, in the background. Call it last: the other settings apply to
    /// spares as they are claimed, not as they are made.
    pub fn with_spares(mut self, count: usize, templates: Vec<SpareTemplate>) -> Self {
        self.spares.close();
        self.spares.delete_ready();
        self.spares = Arc::new(SparePool::new(&self.root, count, templates));
        self.spares.top_up_all();
        self
    }

    /// How many spare sandboxes of `template` are ready (for tests).
    pub fn spares_ready(&self, template: &str) -> usize {
        self.spares.ready(template)
    }

    /// What sandboxes may reach through their private network (`[sandbox.egress]`; the
    /// default is the proxy allowing the npm registry).
    pub fn with_egress(mut self, egress: EgressPolicy) -> Self {
        self.egress = Some(egress);
        self.rebuild_deps();
        self
    }

    /// Shares the host's network with sandboxes instead: no boundary at all. Only for
    /// measuring what the boundary costs.
    pub fn with_host_network(mut self) -> Self {
        self.egress = None;
        self.rebuild_deps();
        self
    }

    /// Gives each confined process a fresh network namespace with its own forwarders, as a
    /// service that cannot make namespaces does, instead of one per sandbox. Only for
    /// testing that fallback and measuring what it costs.
    pub fn with_namespace_per_process(mut self) -> Self {
        self.own_netns = false;
        self
    }

    /// Also hides `path` (e.g. the whole data directory) from sandboxed processes.
    pub fn with_hidden_path(mut self, path: PathBuf) -> Self {
        let path = path.canonicalize().unwrap_or(path);
        self.hidden.push(path);
        self.rebuild_deps();
        self
    }

    fn rebuild_deps(&mut self) {
        self.deps = DependencyCache::new(
            &self.cache,
            self.bwrap.clone(),
            self.hidden.clone(),
            self.egress.clone(),
        );
    }

    /// How long a cached dependency tree that no workspace used stays (default a week);
    /// older ones go with each reaping.
    pub fn with_dependency_idle(mut self, idle: Duration) -> Self {
        self.dependency_idle = idle;
        self
    }

    /// Bounds every sandbox's resources by `limits`; fails when one cannot be enforced
    /// under `isolation = "bwrap"`.
    pub fn with_limits(mut self, limits: Limits) -> Result<Self, SandboxError> {
        if let Some(old) = self.enforcement.cgroups.take() {
            old.remove_parents();
        }
        self.enforcement =
            Enforcement::resolve(limits, &tag(&self.root), self.uids.is_some(), self.strict)?;
        Ok(self)
    }

    /// Runs sandboxes as uids from `identity`'s range (when the service is root and
    /// confinement is on); sandboxes already adopted keep theirs if it is in the range.
    pub fn with_identity(mut self, identity: &IdentityConfig) -> Result<Self, SandboxError> {
        self.uids = identity.resolve(self.bwrap.is_some())?;
        let limits = self.enforcement.limits.clone();
        let sandboxes = adopt(&self.root, self.uids)?;
        self.sandboxes = Mutex::new(sandboxes);
        self.with_limits(limits)
    }

    /// The limits in force and how each is enforced.
    pub fn limits_report(&self) -> LimitsReport {
        self.enforcement.report.clone()
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
    fn runner(&self, sandbox: &Sandbox) -> Result<Arc<dyn CommandRunner>, SandboxError> {
        let owned = vec![sandbox.workspace.clone(), sandbox.home.clone()];
        let mut enclosure = self.enclosure(&sandbox.id, sandbox.uid(), owned)?;
        Ok(match &self.bwrap {
            Some(bwrap) => {
                let network = self.network_of(&sandbox.id, &sandbox.dir, Vec::new())?;
                if sandbox.stop.is_cancelled() {
                    // Stopped meanwhile: what was just made must not outlive it.
                    self.close_network(sandbox.id.as_str(), &sandbox.dir);
                    return Err(SandboxError::NotFound(sandbox.id.to_string()));
                }
                enclosure.netns = network.netns();
                let profile = BwrapProfile {
                    bwrap: bwrap.clone(),
                    writable: vec![sandbox.workspace.clone(), sandbox.home.clone()],
                    readonly: Vec::new(),
                    hidden: self.hidden.clone(),
                    network,
                    identity: enclosure.uid(),
                };
                Arc::new(BwrapCommandRunner::new(
                    profile,
                    sandbox.home.clone(),
                    sandbox.groups.clone(),
                    enclosure,
                ))
            }
            None => Arc::new(UnconfinedCommandRunner::new(
                sandbox.home.clone(),
                sandbox.groups.clone(),
                enclosure,
            )),
        })
    }

    /// The enclosure of sandbox `id`'s processes (its cgroup made if missing), handing
    /// `owned` over to `uid`.
    fn enclosure(
        &self,
        id: &SandboxId,
        uid: Option<u32>,
        owned: Vec<PathBuf>,
    ) -> Result<Enclosure, SandboxError> {
        let cgroup = match &self.enforcement.cgroups {
            Some(tree) => Some(Arc::new(tree.create(id.as_str())?)),
            None => None,
        };
        Ok(Enclosure {
            uid: if self.bwrap.is_some() { uid } else { None },
            owned,
            cgroup,
            rlimits: self.enforcement.rlimits(),
            limits: Some(self.enforcement.limits.clone()),
            netns: None,
        })
    }

    /// How many processes sandbox `id` has in its cgroup; `None` without cgroups or when it
    /// has none (yet, or any more), for tests and metrics.
    pub fn cgroup_population(&self, id: &SandboxId) -> Option<usize> {
        let tree = self.enforcement.cgroups.as_ref()?;
        tree.open(id.as_str()).ok()?.population()
    }

    /// The CPU weights of sandbox `id`'s cgroup and of all sandboxes' parent group, as the
    /// kernel holds them; `None` without the `cpu` controller, for tests.
    pub fn cgroup_cpu_weights(&self, id: &SandboxId) -> Option<(u64, u64)> {
        self.enforcement.cgroups.as_ref()?.cpu_weights(id.as_str())
    }

    /// The cgroup of sandbox `id`, to empty and remove once it stops.
    fn cgroup_of(&self, id: &SandboxId) -> Option<Arc<SandboxCgroup>> {
        let tree = self.enforcement.cgroups.as_ref()?;
        tree.open(id.as_str()).ok().map(Arc::new)
    }

    fn isolation_in_force(&self) -> Isolation {
        if self.bwrap.is_some() {
            Isolation::Bwrap
        } else {
            Isolation::None
        }
    }

    /// Removes every expired sandbox from `map` and stops it; returns what to delete.
    fn take_expired(&self, map: &mut HashMap<SandboxId, Arc<Sandbox>>) -> Vec<(SandboxId, Trash)> {
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
    /// map lock, so a new sandbox of the same id never races the deletion); its cgroup is
    /// emptied and removed with the directory.
    fn terminate(&self, sandbox: &Sandbox) -> Trash {
        sandbox.stop.cancel();
        sandbox.stop_dev_server();
        self.close_network(sandbox.id.as_str(), &sandbox.dir);
        sandbox.groups.kill_all();
        kill_by_cwd(&sandbox.dir);
        Trash {
            dir: self.move_aside(sandbox),
            cgroup: self.cgroup_of(&sandbox.id),
        }
    }
}

/// Sandboxes left in `root` by an earlier process, and trash and spares it left (deleted);
/// each gets a uid of the range unless its own is in it.
fn adopt(
    root: &Path,
    uids: Option<UidRange>,
) -> Result<HashMap<SandboxId, Arc<Sandbox>>, SandboxError> {
    let mut map: HashMap<SandboxId, Arc<Sandbox>> = HashMap::new();
    for entry in std::fs::read_dir(root).map_err(SandboxError::io(root))? {
        let entry = entry.map_err(SandboxError::io(root))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TRASH_PREFIX) || name.starts_with(SPARE_PREFIX) {
            let _ = draftsmith_tools::beneath::remove_dir_all(&entry.path());
        } else if let Ok(id) = SandboxId::parse(name) {
            let sandbox = Sandbox::load(root, &id);
            if let Some(range) = uids
                && !sandbox.uid().is_some_and(|uid| range.contains(uid))
            {
                let used: Vec<u32> = map.values().filter_map(|s| s.uid()).collect();
                sandbox.set_uid(range.allocate(&used)?)?;
            }
            map.insert(id.clone(), Arc::new(sandbox));
        }
    }
    Ok(map)
}

/// Names this controller's cgroups after its sandboxes root, so a restarted service finds
/// them again and two controllers never share one.
fn tag(root: &Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..6])
}

impl Drop for LocalController {
    /// The service is going: its sandboxes' processes go with it, and so do their cgroups.
    fn drop(&mut self) {
        self.spares.close();
        for sandbox in self.sandboxes.get_mut().values() {
            sandbox.stop_dev_server();
        }
        let ids: Vec<SandboxId> = self.sandboxes.get_mut().keys().cloned().collect();
        for id in ids {
            if let Some(cgroup) = self.cgroup_of(&id) {
                cgroup.destroy();
            }
        }
        if let Some(tree) = &self.enforcement.cgroups {
            tree.remove_parents();
        }
    }
}

impl std::fmt::Debug for LocalController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalController")
            .field("root", &self.root)
            .field("isolation", &self.isolation_in_force())
            .field("egress", &self.egress_in_force())
            .finish_non_exhaustive()
    }
}
