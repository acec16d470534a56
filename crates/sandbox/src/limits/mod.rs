//! Resource limits per sandbox (`[sandbox.limits]`): processes, memory and CPU share through
//! one cgroup per sandbox (v2 where it is usable, v1 where that is what the host offers),
//! open files and file size through rlimits, and rlimits as the fallback where no cgroup
//! controller can be had. Which mechanism enforces each limit is decided once at start,
//! reported in capabilities and the start-up log, and a limit nothing can enforce fails
//! the start under `isolation = "bwrap"`.

mod cgroup;

pub(crate) use cgroup::{CgroupTree, Counters, SandboxCgroup};
pub(crate) use draftsmith_process::Rlimit;

use serde::{Deserialize, Serialize};

use crate::error::SandboxError;

const MIB: u64 = 1024 * 1024;

/// What the `RLIMIT_DATA` fallback allows beyond `memory_mib`. The rlimit counts writable
/// memory a process reserves, not what it touches, and JIT runtimes reserve gigabytes up
/// front: Bun's JavaScriptCore (OpenCode's runtime) runs without its JIT under 2 GiB
/// (seven times slower, and OpenCode's runs 2.5 times) and aborts a little above; it works
/// from about 2.6 GiB. Each process stays bounded; the sandbox's total never was under
/// rlimits (see `docs/threat-model.md`).
const RESERVATION_ALLOWANCE_BYTES: u64 = 4096 * MIB;

/// `[sandbox.limits]`; every key has a `DRAFTSMITH_SANDBOX_…` environment override and 0
/// turns that limit off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most processes and threads at once (`DRAFTSMITH_SANDBOX_MAX_PROCESSES`).
    pub processes: u64,
    /// Most memory, in MiB (`DRAFTSMITH_SANDBOX_MEMORY_MIB`); past it the kernel kills.
    pub memory_mib: u64,
    /// CPU weight against other sandboxes, on cgroup v1's `cpu.shares` scale where 1024 is
    /// one ordinary share (`DRAFTSMITH_SANDBOX_CPU_SHARES`).
    pub cpu_shares: u64,
    /// Largest workspace, in MiB (`DRAFTSMITH_SANDBOX_DISK_MIB`): no file written may
    /// exceed it, and the sync refuses a workspace whose files add up to more.
    pub disk_mib: u64,
    /// Most open files per process (`DRAFTSMITH_SANDBOX_OPEN_FILES`).
    pub open_files: u64,
    /// `auto` (cgroups where the host offers them, else rlimits) or `rlimit` (never
    /// cgroups) (`DRAFTSMITH_SANDBOX_LIMITS_MECHANISM`).
    pub mechanism: LimitsMechanism,
}

/// What may enforce the limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitsMechanism {
    /// Cgroups where the host offers them, else rlimits.
    #[default]
    #[serde(alias = "cgroup")]
    Auto,
    /// Never cgroups.
    Rlimit,
}

impl std::str::FromStr for LimitsMechanism {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "cgroup" => Ok(Self::Auto),
            "rlimit" => Ok(Self::Rlimit),
            other => Err(format!("expected auto or rlimit, got {other:?}")),
        }
    }
}

impl Default for Limits {
    /// Sized for a `vite-react` build next to an OpenCode server.
    fn default() -> Self {
        Self {
            processes: 512,
            memory_mib: 2048,
            cpu_shares: 1024,
            disk_mib: 2048,
            open_files: 4096,
            mechanism: LimitsMechanism::Auto,
        }
    }
}

impl Limits {
    /// No limit at all (the dependency cache's own installs, unit tests).
    pub fn unlimited() -> Self {
        Self {
            processes: 0,
            memory_mib: 0,
            cpu_shares: 0,
            disk_mib: 0,
            open_files: 0,
            mechanism: LimitsMechanism::Auto,
        }
    }

    /// The memory limit in bytes (0: none).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib.saturating_mul(MIB)
    }

    /// The workspace size limit in bytes (0: none).
    pub fn disk_bytes(&self) -> u64 {
        self.disk_mib.saturating_mul(MIB)
    }
}

/// How one limit is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// A cgroup v2 controller.
    CgroupV2,
    /// A cgroup v1 controller.
    CgroupV1,
    /// A per-process rlimit.
    Rlimit,
    /// The limit is configured as 0.
    Off,
    /// Nothing on this host can enforce it (only with `isolation = "auto"` or `"none"`).
    Unenforced,
}

impl Mechanism {
    /// The capabilities and log spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CgroupV2 => "cgroup_v2",
            Self::CgroupV1 => "cgroup_v1",
            Self::Rlimit => "rlimit",
            Self::Off => "off",
            Self::Unenforced => "unenforced",
        }
    }
}

/// The limits in force and how each is enforced, for capabilities and the start-up log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsReport {
    /// The configured values.
    pub limits: Limits,
    /// Processes: a pids cgroup, or `RLIMIT_NPROC` under a per-sandbox uid.
    pub processes: Mechanism,
    /// Memory: a memory cgroup, or `RLIMIT_DATA` per process.
    pub memory: Mechanism,
    /// CPU share: a cpu cgroup only.
    pub cpu: Mechanism,
    /// Workspace size: `RLIMIT_FSIZE` per file plus the sync's check of the whole.
    pub disk: Mechanism,
    /// Open files: `RLIMIT_NOFILE`.
    pub open_files: Mechanism,
    /// Who sandbox processes run as: `per_sandbox_uid` or `service_uid`.
    pub identity: String,
}

impl LimitsReport {
    /// The capabilities' form.
    pub fn to_api(&self) -> draftsmith_core::api::SandboxLimits {
        let limit = |value: u64, mechanism: Mechanism| draftsmith_core::api::LimitInForce {
            value,
            mechanism: mechanism.as_str().into(),
        };
        let l = &self.limits;
        draftsmith_core::api::SandboxLimits {
            identity: self.identity.clone(),
            processes: limit(l.processes, self.processes),
            memory_mib: limit(l.memory_mib, self.memory),
            cpu_shares: limit(l.cpu_shares, self.cpu),
            disk_mib: limit(l.disk_mib, self.disk),
            open_files: limit(l.open_files, self.open_files),
        }
    }
}

/// The limits of every sandbox of one controller, resolved once at start.
#[derive(Debug)]
pub(crate) struct Enforcement {
    pub(crate) limits: Limits,
    pub(crate) cgroups: Option<CgroupTree>,
    pub(crate) report: LimitsReport,
}

impl Enforcement {
    /// Decides how each limit is enforced. `tag` names this controller's cgroups;
    /// `own_uid` says whether sandboxes get uids of their own (`RLIMIT_NPROC` then counts
    /// one sandbox); `strict` turns an unenforceable limit into an error.
    pub(crate) fn resolve(
        limits: Limits,
        tag: &str,
        own_uid: bool,
        strict: bool,
    ) -> Result<Self, SandboxError> {
        let cgroups = if limits.mechanism == LimitsMechanism::Auto {
            CgroupTree::detect(tag, &limits)
        } else {
            None
        };
        let cg = |controller: cgroup::Controller| {
            cgroups
                .as_ref()
                .filter(|t| t.has(controller))
                .map(CgroupTree::mechanism)
        };
        let pick = |value: u64, cgroup: Option<Mechanism>, rlimit: bool| match (value, cgroup) {
            (0, _) => Mechanism::Off,
            (_, Some(m)) => m,
            _ if rlimit => Mechanism::Rlimit,
            _ => Mechanism::Unenforced,
        };
        let report = LimitsReport {
            processes: pick(limits.processes, cg(cgroup::Controller::Pids), own_uid),
            memory: pick(limits.memory_mib, cg(cgroup::Controller::Memory), true),
            cpu: pick(limits.cpu_shares, cg(cgroup::Controller::Cpu), false),
            disk: pick(limits.disk_mib, None, true),
            open_files: pick(limits.open_files, None, true),
            identity: if own_uid {
                "per_sandbox_uid".into()
            } else {
                "service_uid".into()
            },
            limits: limits.clone(),
        };
        let unenforced: Vec<&str> = [
            ("processes", report.processes),
            ("memory_mib", report.memory),
            ("cpu_shares", report.cpu),
        ]
        .into_iter()
        .filter(|(_, m)| *m == Mechanism::Unenforced)
        .map(|(name, _)| name)
        .collect();
        if !unenforced.is_empty() {
            let why = format!(
                "no cgroup controller and no rlimit can enforce [sandbox.limits] {} on this host; \
                 set them to 0 to run without them",
                unenforced.join(", ")
            );
            if strict {
                return Err(SandboxError::Isolation(why));
            }
            tracing::warn!(reason = %why, "sandbox limits are NOT all enforced");
        }
        Ok(Self {
            limits,
            cgroups,
            report,
        })
    }

    /// The rlimits every process of a sandbox starts with.
    pub(crate) fn rlimits(&self) -> Vec<Rlimit> {
        let l = &self.limits;
        let mut out = Vec::new();
        if l.open_files > 0 {
            out.push(Rlimit::OpenFiles(l.open_files));
        }
        if l.disk_mib > 0 {
            out.push(Rlimit::FileSize(l.disk_bytes()));
        }
        if self.report.processes == Mechanism::Rlimit {
            out.push(Rlimit::Processes(l.processes));
        }
        if self.report.memory == Mechanism::Rlimit {
            out.push(Rlimit::Data(
                l.memory_bytes().saturating_add(RESERVATION_ALLOWANCE_BYTES),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn rlimits_only_resolution_reports_and_refuses() {
        let limits = Limits {
            mechanism: LimitsMechanism::Rlimit,
            ..Limits::default()
        };
        // CPU share has no rlimit: strict refuses, lenient reports it.
        let err = Enforcement::resolve(limits.clone(), "t", true, true).unwrap_err();
        assert!(err.to_string().contains("cpu_shares"), "{err}");
        let lenient = Enforcement::resolve(limits.clone(), "t", false, false).unwrap();
        assert_eq!(lenient.report.cpu, Mechanism::Unenforced);
        assert_eq!(lenient.report.processes, Mechanism::Unenforced);
        assert_eq!(lenient.report.memory, Mechanism::Rlimit);
        let no_cpu = Limits {
            cpu_shares: 0,
            ..limits
        };
        let strict = Enforcement::resolve(no_cpu, "t", true, true).unwrap();
        assert_eq!(strict.report.processes, Mechanism::Rlimit);
        assert_eq!(strict.report.cpu, Mechanism::Off);
        assert_eq!(strict.rlimits().len(), 4);
        let data = strict.rlimits().into_iter().find_map(|r| match r {
            Rlimit::Data(bytes) => Some(bytes),
            _ => None,
        });
        assert_eq!(data, Some((2048 + 4096) * MIB));
    }
}
