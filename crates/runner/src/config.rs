//! How the runner behaves: [`RunnerConfig`].

use std::path::PathBuf;
use std::time::Duration;

use draftsmith_core::InstanceId;

use crate::policy::EnginePolicy;

/// How the runner behaves.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Workspaces live in `data_dir/sandboxes`.
    pub data_dir: PathBuf,
    /// This instance's stable identity (it survives restarts of the same data directory).
    pub instance: InstanceId,
    /// Engine policy.
    pub policy: EnginePolicy,
    /// Model turns before a run pauses.
    pub max_steps: usize,
    /// Summaries the native loop may have written per run to stay inside the window.
    pub max_compactions: u32,
    /// How long a lease lasts without renewal.
    pub lease: Duration,
    /// How often cancel requests and expired leases are checked.
    pub poll: Duration,
    /// Whether the template's verification commands run after the agent's edits.
    pub verify: bool,
    /// How long an idle sandbox stays warm (`APPS_CODING_AGENT_SANDBOX_TTL_SECONDS`).
    pub sandbox_ttl: Duration,
    /// Turns the agent gets to repair a failed verification.
    pub repair_turns: usize,
    /// Per-run and per-user spending limits.
    pub budgets: crate::budget::Budgets,
    /// Per-user and per-instance fair-use limits.
    pub fair_use: crate::fair_use::FairUse,
    /// `[coding_agent] queue_after_failure = "hold"`: a failed run holds the app's queue
    /// until `POST …/queue/resume`; `false` (`"continue"`) goes on.
    pub hold_queue_after_failure: bool,
    /// Whether model calls are recorded (usage, cost, budgets); off only to measure what
    /// accounting costs (`[metrics] accounting = false`).
    pub accounting: bool,
    /// Whether Prometheus metrics are recorded and served (`[metrics] enabled`); read at
    /// start only.
    pub metrics: bool,
    /// New chats kept ready for OpenCode runs, their server started (`[opencode]
    /// warm_chats`).
    pub warm_chats: WarmChats,
}

/// How many new chats of each template are kept ready for the OpenCode engine
/// ([`crate::warm`]); none by default, as each holds an idle OpenCode server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmChats {
    /// How many of each template.
    pub per_template: usize,
    /// The templates (every template the service offers).
    pub templates: Vec<String>,
}
