//! What every process of one sandbox starts inside: its cgroup (joined before exec, so
//! nothing it forks escapes the count), its rlimits, its network namespace (joined before
//! exec, when the sandbox has a persistent one), and the hand-over of the sandbox's
//! directories to its uid. Commands and services (the OpenCode server) go through the same
//! [`Enclosure`], and a command that hit a limit says so in its output.

use std::path::PathBuf;
use std::sync::Arc;

use draftsmith_process::ChildSetup;
use draftsmith_tools::CommandOutput;

use crate::egress::NetNs;
use crate::error::SandboxError;
use crate::identity::hand_over;
use crate::limits::{Counters, Limits, Rlimit, SandboxCgroup};

/// One sandbox's identity and limits, applied to each process it starts.
#[derive(Debug, Clone, Default)]
pub struct Enclosure {
    /// The sandbox's own uid (and gid), or `None` to run as the service.
    pub(crate) uid: Option<u32>,
    /// Directories handed over to `uid` before a process starts (workspace, HOMEs).
    pub(crate) owned: Vec<PathBuf>,
    pub(crate) cgroup: Option<Arc<SandboxCgroup>>,
    pub(crate) rlimits: Vec<Rlimit>,
    pub(crate) limits: Option<Limits>,
    /// The sandbox's network namespace, joined before exec (then bubblewrap makes none).
    pub(crate) netns: Option<Arc<NetNs>>,
}

impl Enclosure {
    /// No identity change and no limit (the dependency cache's installs).
    pub fn unbounded() -> Self {
        Self::default()
    }

    /// The uid the sandbox's processes run as, if not the service's.
    pub fn uid(&self) -> Option<u32> {
        self.uid
    }

    /// Hands the sandbox's directories over to its uid (on the blocking pool) and makes
    /// `command`'s child join the cgroup and take the rlimits before it execs. Call it
    /// before any other `pre_exec`, so a parent-death signal is armed after these.
    pub async fn admit(&self, command: &mut tokio::process::Command) -> Result<(), SandboxError> {
        if let Some(uid) = self.uid {
            let owned = self.owned.clone();
            tokio::task::spawn_blocking(move || {
                owned.iter().try_for_each(|dir| hand_over(dir, uid, false))
            })
            .await
            .map_err(|e| SandboxError::Process(format!("hand-over failed: {e}")))??;
        }
        self.install(command);
        Ok(())
    }

    /// [`Enclosure::admit`] on the calling thread, for a service started once (the hand-over
    /// leaves `node_modules` trees alone, so it is a short walk).
    pub fn admit_now(&self, command: &mut tokio::process::Command) -> Result<(), SandboxError> {
        if let Some(uid) = self.uid {
            for dir in &self.owned {
                hand_over(dir, uid, false)?;
            }
        }
        self.install(command);
        Ok(())
    }

    /// Installs the child's part of [`Enclosure::admit`] without the hand-over.
    pub(crate) fn install(&self, command: &mut tokio::process::Command) {
        ChildSetup {
            cgroup: self.cgroup.as_ref().map(|c| c.procs()),
            rlimits: self.rlimits.clone(),
            namespaces: self.netns.iter().map(|n| n.fd()).collect(),
            ..ChildSetup::default()
        }
        .install(command);
    }

    /// The kernel's counts so far, to compare after a command.
    pub(crate) fn counters(&self) -> Counters {
        self.cgroup
            .as_ref()
            .map(|c| c.counters())
            .unwrap_or_default()
    }

    /// Appends to `out` which limit the command ran into, if the counts moved.
    pub(crate) fn annotate(&self, out: &mut CommandOutput, before: Counters) {
        let (Some(limits), after) = (&self.limits, self.counters()) else {
            return;
        };
        if after.oom_kills > before.oom_kills {
            out.output.push_str(&format!(
                "\n[draftsmith] a process was killed: the sandbox's memory limit ({} MiB) was exceeded\n",
                limits.memory_mib
            ));
        }
        if after.pids_refused > before.pids_refused {
            out.output.push_str(&format!(
                "\n[draftsmith] the sandbox's process limit ({}) was reached: {} process starts were refused\n",
                limits.processes,
                after.pids_refused - before.pids_refused
            ));
        }
    }
}
