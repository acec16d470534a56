//! The one process supervisor of draftsmith, and the only place that holds `unsafe` for
//! process work. A command runs as the leader of its own process group ([`run`]), with
//! its output's tail kept and a timeout and a cancellation that kill its whole tree
//! ([`kill_tree`]: the group and every descendant found through `/proc`, so one that left
//! the group is not missed). What a child does between fork and exec (join a cgroup, take
//! rlimits, enter namespaces, die with its parent) is described by a [`ChildSetup`], so
//! callers never write a `pre_exec` of their own; a [`NetNamespace`] to enter is made here
//! too.

mod child;
mod groups;
mod ids;
mod netns;
mod procfs;
mod run;
mod signal;
mod tail;

pub use child::{CgroupProcs, ChildSetup, Rlimit};
pub use groups::ProcessGroups;
pub use ids::{euid, is_root, uid};
pub use netns::NetNamespace;
pub use procfs::{cwd_of, descendants, is_running, parent_of, pids, pids_mentioning, pids_under};
pub use run::{Bounds, CommandOutput, RunError, run};
pub use signal::{kill_by_cwd, kill_group, kill_pid, kill_tree};
pub use tail::TailBuffer;
