//! One cgroup per sandbox, nested under the service's own cgroup
//! (`<own>/draftsmith-<tag>/<sandbox id>`), so sandboxes stay inside whatever bounds the
//! host put on the service. cgroup v2 is used where its controllers can be enabled there;
//! otherwise each v1 hierarchy that offers `pids`, `memory` or `cpu` and lets us create a
//! group. A process joins from the child before exec (it cannot fork before), so every
//! process of the sandbox is counted.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use draftsmith_process::{CgroupProcs, kill_pid};

use super::{Limits, Mechanism};
use crate::error::SandboxError;

/// The controllers sandboxes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Controller {
    Pids,
    Memory,
    Cpu,
}

impl Controller {
    const ALL: [Self; 3] = [Self::Pids, Self::Memory, Self::Cpu];

    fn name(self) -> &'static str {
        match self {
            Self::Pids => "pids",
            Self::Memory => "memory",
            Self::Cpu => "cpu",
        }
    }
}

/// Where this controller's sandbox cgroups go, per controller.
#[derive(Debug)]
pub(crate) struct CgroupTree {
    v2: bool,
    parents: Vec<(Controller, PathBuf)>,
    limits: Limits,
}

impl CgroupTree {
    /// Finds usable controllers for the limits that are set; `None` when there is none.
    pub(crate) fn detect(tag: &str, limits: &Limits) -> Option<Self> {
        let wanted: Vec<Controller> = Controller::ALL
            .into_iter()
            .filter(|c| match c {
                Controller::Pids => limits.processes > 0,
                Controller::Memory => limits.memory_mib > 0,
                Controller::Cpu => limits.cpu_shares > 0,
            })
            .collect();
        if wanted.is_empty() {
            return None;
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let group = format!("draftsmith-{tag}");
        let (v2, parents) = match v2_parent(&mounts, &own, &group, &wanted) {
            Some(dir) => (true, wanted.iter().map(|c| (*c, dir.clone())).collect()),
            None => (false, v1_parents(&mounts, &own, &group, &wanted)),
        };
        if parents.is_empty() {
            return None;
        }
        let tree = Self {
            v2,
            parents,
            limits: limits.clone(),
        };
        tree.weigh_parent();
        Some(tree)
    }

    /// Gives the sandboxes' parent group one sandbox's CPU weight per CPU. The scheduler
    /// spreads a group's weight over the CPUs its threads run on, so with the parent at one
    /// sandbox's weight a lone sandbox whose runtime keeps every CPU busy (a JavaScript
    /// engine's collector threads beside its main thread) would weigh a fraction of one
    /// unconfined process on each CPU, and lose time to every other process on the host.
    /// Sandboxes still divide the parent's weight among themselves by their own weights.
    fn weigh_parent(&self) {
        let Some(parent) = self.parent(Controller::Cpu) else {
            return;
        };
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let (file, value) = cpu_weight(self.limits.cpu_shares, self.v2, cpus);
        if let Err(e) = std::fs::write(parent.join(file), &value) {
            tracing::warn!(parent = %parent.display(), %e, "cannot weigh the sandboxes' cgroup");
        }
    }

    /// The CPU weight of sandbox `id`'s cgroup and of the sandboxes' parent group, as
    /// written in their files (`cpu.shares` or `cpu.weight`); `None` without the `cpu`
    /// controller or before the sandbox's group exists.
    pub(crate) fn cpu_weights(&self, id: &str) -> Option<(u64, u64)> {
        let parent = self.parent(Controller::Cpu)?;
        let file = cpu_weight_file(self.v2);
        let read = |dir: &Path| -> Option<u64> {
            std::fs::read_to_string(dir.join(file))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        Some((read(&parent.join(id))?, read(parent)?))
    }

    pub(crate) fn has(&self, controller: Controller) -> bool {
        self.parent(controller).is_some()
    }

    /// The sandboxes' parent group in `controller`'s hierarchy.
    fn parent(&self, controller: Controller) -> Option<&Path> {
        self.parents
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, dir)| dir.as_path())
    }

    pub(crate) fn mechanism(&self) -> Mechanism {
        if self.v2 {
            Mechanism::CgroupV2
        } else {
            Mechanism::CgroupV1
        }
    }

    /// Creates (or finds) the cgroup of sandbox `id` and writes its limits.
    pub(crate) fn create(&self, id: &str) -> Result<SandboxCgroup, SandboxError> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (controller, parent) in &self.parents {
            let dir = parent.join(id);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(SandboxError::io(&dir)(e)),
            }
            for (file, value) in self.settings(*controller) {
                write(&dir.join(file), &value)?;
            }
            if self.v2 {
                // Swap would let memory outgrow the limit; hosts without swap lack the file.
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            } else if *controller == Controller::Memory {
                let bytes = self.limits.memory_bytes().to_string();
                let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes);
            }
            dirs.push(dir);
        }
        self.open(id)
    }

    /// The cgroup of sandbox `id`, whether or not it exists yet.
    pub(crate) fn open(&self, id: &str) -> Result<SandboxCgroup, SandboxError> {
        let dirs: Vec<(Controller, PathBuf)> = self
            .parents
            .iter()
            .map(|(controller, parent)| (*controller, parent.join(id)))
            .collect();
        let procs = CgroupProcs::of_dirs(dirs.iter().map(|(_, dir)| dir.clone()))
            .map_err(|e| SandboxError::Invalid(e.to_string()))?;
        Ok(SandboxCgroup {
            v2: self.v2,
            dirs,
            procs,
        })
    }

    fn settings(&self, controller: Controller) -> Vec<(&'static str, String)> {
        let l = &self.limits;
        match (controller, self.v2) {
            (Controller::Pids, _) => vec![("pids.max", l.processes.to_string())],
            (Controller::Memory, true) => vec![("memory.max", l.memory_bytes().to_string())],
            (Controller::Memory, false) => {
                vec![("memory.limit_in_bytes", l.memory_bytes().to_string())]
            }
            (Controller::Cpu, v2) => vec![cpu_weight(l.cpu_shares, v2, 1)],
        }
    }

    /// Removes this controller's parent groups once nothing is left in them.
    pub(crate) fn remove_parents(&self) {
        for (_, parent) in &self.parents {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// What the kernel counted against a sandbox's limits, to name the limit a command hit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Process creations refused by the pids limit.
    pub(crate) pids_refused: u64,
    /// Processes killed by the memory limit.
    pub(crate) oom_kills: u64,
}

/// One sandbox's cgroup (a directory per v1 hierarchy, one directory under v2).
#[derive(Debug)]
pub(crate) struct SandboxCgroup {
    v2: bool,
    dirs: Vec<(Controller, PathBuf)>,
    /// The `cgroup.procs` files a new process writes itself into, prepared before fork.
    procs: CgroupProcs,
}

impl SandboxCgroup {
    /// The `cgroup.procs` files a new process joins through (see [`ChildSetup`]).
    ///
    /// [`ChildSetup`]: draftsmith_process::ChildSetup
    pub(crate) fn procs(&self) -> CgroupProcs {
        self.procs.clone()
    }

    /// The kernel's counts so far.
    pub(crate) fn counters(&self) -> Counters {
        let mut counters = Counters::default();
        for (controller, dir) in &self.dirs {
            match controller {
                Controller::Pids => {
                    counters.pids_refused = field(&dir.join("pids.events"), "max");
                }
                Controller::Memory => {
                    let file = if self.v2 {
                        "memory.events"
                    } else {
                        "memory.oom_control"
                    };
                    counters.oom_kills = field(&dir.join(file), "oom_kill");
                }
                Controller::Cpu => {}
            }
        }
        counters
    }

    /// How many processes are in it now; `None` once it is removed (or before it exists).
    pub(crate) fn population(&self) -> Option<usize> {
        let (_, dir) = self.dirs.first()?;
        dir.is_dir().then(|| members(dir).len())
    }

    /// SIGKILLs everything in it until it is empty, then removes its directories.
    pub(crate) fn destroy(&self) {
        for _ in 0..100 {
            let pids: Vec<u32> = self.dirs.iter().flat_map(|(_, d)| members(d)).collect();
            if pids.is_empty() {
                break;
            }
            pids.into_iter().for_each(kill_pid);
            std::thread::sleep(Duration::from_millis(10));
        }
        for (_, dir) in &self.dirs {
            for _ in 0..50 {
                match std::fs::remove_dir(dir) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => break,
                }
            }
        }
    }
}

/// The file and value that weigh a group at `shares` (v1's scale, 1024 a process's
/// default) times `times`: v1's `cpu.shares` (2 to 262144), v2's `cpu.weight` (1 to
/// 10000, 100 the default).
fn cpu_weight(shares: u64, v2: bool, times: u64) -> (&'static str, String) {
    let shares = shares.saturating_mul(times);
    let value = if v2 {
        (shares.saturating_mul(100) / 1024).clamp(1, 10_000)
    } else {
        shares.clamp(2, 262_144)
    };
    (cpu_weight_file(v2), value.to_string())
}

/// The file that holds a group's CPU weight.
fn cpu_weight_file(v2: bool) -> &'static str {
    if v2 { "cpu.weight" } else { "cpu.shares" }
}

fn members(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// The number after `key` in a `key value` file (0 when absent).
fn field(file: &Path, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (k, v) = line.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
        })
        .unwrap_or(0)
}

fn write(file: &Path, value: &str) -> Result<(), SandboxError> {
    std::fs::write(file, value).map_err(SandboxError::io(file))
}

/// Mount points per file-system type: `(fstype, super options, root, mount point)`.
fn mounts(mountinfo: &str) -> Vec<(String, String, String, PathBuf)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some((
                (*right.first()?).to_owned(),
                (*right.get(2)?).to_owned(),
                (*left.get(3)?).to_owned(),
                PathBuf::from(left.get(4)?),
            ))
        })
        .collect()
}

/// `<mount>/<own path>` for a hierarchy, with the mount's own root taken off the path.
fn own_dir(mount_point: &Path, mount_root: &str, own: &str) -> PathBuf {
    let relative = own.strip_prefix(mount_root).unwrap_or(own);
    mount_point.join(relative.trim_start_matches('/'))
}

/// The v2 parent group, when the unified hierarchy has the controllers and lets us enable
/// them for our own children.
fn v2_parent(mountinfo: &str, own: &str, group: &str, wanted: &[Controller]) -> Option<PathBuf> {
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let (_, _, root, point) = mounts(mountinfo)
        .into_iter()
        .find(|(fstype, ..)| fstype == "cgroup2")?;
    let base = own_dir(&point, &root, path);
    let available = std::fs::read_to_string(base.join("cgroup.controllers")).ok()?;
    let names: Vec<&str> = wanted.iter().map(|c| c.name()).collect();
    if !names
        .iter()
        .all(|n| available.split_whitespace().any(|a| a == *n))
    {
        return None;
    }
    let enable: String = names.iter().map(|n| format!("+{n} ")).collect();
    std::fs::write(base.join("cgroup.subtree_control"), enable.trim()).ok()?;
    let dir = base.join(group);
    if let Err(e) = std::fs::create_dir(&dir)
        && e.kind() != ErrorKind::AlreadyExists
    {
        return None;
    }
    std::fs::write(dir.join("cgroup.subtree_control"), enable.trim()).ok()?;
    Some(dir)
}

/// A parent group per v1 hierarchy that has a wanted controller and lets us create it.
fn v1_parents(
    mountinfo: &str,
    own: &str,
    group: &str,
    wanted: &[Controller],
) -> Vec<(Controller, PathBuf)> {
    let hierarchies = mounts(mountinfo);
    let mut out = Vec::new();
    for controller in wanted {
        let name = controller.name();
        let Some((_, _, root, point)) = hierarchies.iter().find(|(fstype, options, ..)| {
            fstype == "cgroup" && options.split(',').any(|o| o == name)
        }) else {
            continue;
        };
        let Some(path) = own.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            list.split(',').any(|c| c == name).then_some(path)
        }) else {
            continue;
        };
        let dir = own_dir(point, root, path).join(group);
        let made = match std::fs::create_dir(&dir) {
            Ok(()) => true,
            Err(e) => e.kind() == ErrorKind::AlreadyExists,
        };
        if made && dir.join("cgroup.procs").exists() {
            out.push((*controller, dir));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup/pids rw,relatime shared:9 - cgroup cgroup rw,pids
31 25 0:27 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory
32 25 0:28 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
33 25 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct";

    #[test]
    fn reads_mounts_and_own_paths() {
        let found = mounts(MOUNTINFO);
        assert_eq!(found.len(), 4);
        assert_eq!(found[1].0, "cgroup");
        assert_eq!(found[1].1, "rw,memory");
        assert_eq!(found[2].3, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(
            own_dir(Path::new("/sys/fs/cgroup/memory"), "/", "/job/1"),
            PathBuf::from("/sys/fs/cgroup/memory/job/1")
        );
        assert_eq!(
            own_dir(Path::new("/sys/fs/cgroup/memory"), "/job", "/job/1"),
            PathBuf::from("/sys/fs/cgroup/memory/1")
        );
    }

    #[test]
    fn cpu_weights_scale_within_each_versions_bounds() {
        assert_eq!(cpu_weight(1024, false, 1), ("cpu.shares", "1024".into()));
        assert_eq!(cpu_weight(1024, false, 2), ("cpu.shares", "2048".into()));
        assert_eq!(cpu_weight(1, false, 1), ("cpu.shares", "2".into()));
        assert_eq!(
            cpu_weight(1 << 20, false, 4),
            ("cpu.shares", "262144".into())
        );
        assert_eq!(cpu_weight(1024, true, 1), ("cpu.weight", "100".into()));
        assert_eq!(cpu_weight(512, true, 8), ("cpu.weight", "400".into()));
        assert_eq!(cpu_weight(1, true, 1), ("cpu.weight", "1".into()));
        assert_eq!(
            cpu_weight(u64::MAX, true, 2),
            ("cpu.weight", "10000".into())
        );
    }

    #[test]
    fn reads_counters() {
        let dir = std::env::temp_dir().join(format!("cg-counters-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        std::fs::write(dir.join("pids.events"), "max 7\n").ok();
        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .ok();
        let cgroup = SandboxCgroup {
            v2: false,
            dirs: vec![
                (Controller::Pids, dir.clone()),
                (Controller::Memory, dir.clone()),
            ],
            procs: CgroupProcs::default(),
        };
        assert_eq!(
            cgroup.counters(),
            Counters {
                pids_refused: 7,
                oom_kills: 2
            }
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
