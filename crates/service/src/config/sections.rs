//! The sections of the configuration file, each with its defaults. Settings that name a
//! choice are enums and time spans are [`Duration`]s from the file's `…_seconds` keys, so
//! nothing downstream parses a string again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use draftsmith_core::EngineKind;
use draftsmith_engine::{ModelSettings, ProviderKind};
use draftsmith_sandbox::{IdentityConfig, IsolationMode, Limits};
use draftsmith_server::edge::seconds;
use serde::{Deserialize, Deserializer};

/// `[publish]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishConfig {
    /// Serve each published app at `{slug}.{apps_domain}` too, as its own origin; empty:
    /// only at `/p/{slug}/`.
    pub apps_domain: String,
    /// Memory for hot published files, in MiB.
    pub cache_mib: usize,
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self {
            apps_domain: String::new(),
            cache_mib: 64,
        }
    }
}

/// `[sandbox]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// `auto`, `bwrap` or `none`.
    pub isolation: IsolationMode,
    /// How long an idle sandbox stays warm (`ttl_seconds`, at least 1 s).
    #[serde(rename = "ttl_seconds", deserialize_with = "seconds")]
    pub ttl: Duration,
    /// A separate `draftsmith sandbox-controller` to use instead of the in-process one.
    pub controller_url: String,
    /// The secret it expects.
    pub controller_secret: String,
    /// Sandboxes of each template made ahead, so a new chat's sandbox is ready at once
    /// (0: none); kept by whichever controller makes sandboxes (in process, or
    /// `draftsmith sandbox-controller`).
    pub spares: usize,
    /// `[sandbox.limits]`: processes, memory, CPU share, workspace size, open files.
    pub limits: Limits,
    /// `[sandbox.identity]`: the uids sandboxes run as when the service is root.
    pub identity: IdentityConfig,
    /// `[sandbox.egress]`: what the sandbox's private network may reach.
    pub egress: EgressConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            isolation: IsolationMode::Auto,
            ttl: Duration::from_secs(1800),
            controller_url: String::new(),
            controller_secret: String::new(),
            spares: 2,
            limits: Limits::default(),
            identity: IdentityConfig::default(),
            egress: EgressConfig::default(),
        }
    }
}

/// Whether a sandbox's network has a way out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EgressMode {
    /// The allow-list, through the sandbox's egress proxy.
    #[default]
    Proxy,
    /// Loopback only.
    None,
}

impl EgressMode {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::None => "none",
        }
    }
}

impl std::str::FromStr for EgressMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "proxy" => Ok(Self::Proxy),
            "none" => Ok(Self::None),
            other => Err(format!("expected proxy or none, got {other:?}")),
        }
    }
}

/// `[sandbox.egress]` (`mode`, `allow`), or `egress = "none"` / `"proxy"` under `[sandbox]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "EgressSetting")]
pub struct EgressConfig {
    /// `proxy` (default) or `none`.
    pub mode: EgressMode,
    /// Host names the proxy allows (`*.example.com` for subdomains); unset: the host of
    /// the registry the host's npm is configured with.
    pub allow: Option<Vec<String>>,
}

/// The two spellings of the egress setting.
#[derive(Deserialize)]
#[serde(untagged)]
enum EgressSetting {
    Mode(EgressMode),
    Table(EgressTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressTable {
    #[serde(default)]
    mode: EgressMode,
    #[serde(default)]
    allow: Option<Vec<String>>,
}

impl From<EgressSetting> for EgressConfig {
    fn from(setting: EgressSetting) -> Self {
        match setting {
            EgressSetting::Mode(mode) => Self { mode, allow: None },
            EgressSetting::Table(t) => Self {
                mode: t.mode,
                allow: t.allow,
            },
        }
    }
}

/// `[coding_agent]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodingAgentConfig {
    /// `opencode` or `native`; unset: `opencode` (`native` in demo mode).
    pub default_engine: Option<EngineKind>,
    /// Whether `native` may be used.
    pub native_enabled: bool,
    /// Model turns before a run pauses.
    pub max_steps: usize,
    /// Summaries a native run may have the model write to stay inside its context window.
    pub max_compactions: u32,
    /// Lease on an executing run; another instance ends it once expired
    /// (`run_lease_seconds`, at least 0.5 s).
    #[serde(rename = "run_lease_seconds", deserialize_with = "seconds")]
    pub run_lease: Duration,
    /// Run the template's verification commands after the agent's edits.
    pub verify: bool,
    /// Turns the agent gets to repair a failed verification.
    pub repair_turns: usize,
    /// What the app's queue does after a failed run.
    pub queue_after_failure: QueueAfterFailure,
}

/// `[coding_agent] queue_after_failure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueAfterFailure {
    /// The next queued prompt starts anyway.
    #[default]
    Continue,
    /// The queue waits for `POST …/queue/resume`.
    Hold,
}

impl Default for CodingAgentConfig {
    fn default() -> Self {
        Self {
            default_engine: None,
            native_enabled: false,
            max_steps: 40,
            max_compactions: 3,
            run_lease: Duration::from_secs(15),
            verify: true,
            repair_turns: 2,
            queue_after_failure: QueueAfterFailure::default(),
        }
    }
}

/// `[opencode]`: the OpenCode engine's servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpencodeSection {
    /// The `opencode` binary; unset: found on the usual paths.
    pub binary: Option<PathBuf>,
    /// Limit for starting a server (`start_timeout_seconds`).
    #[serde(rename = "start_timeout_seconds", deserialize_with = "seconds")]
    pub start_timeout: Duration,
    /// How long a failing model call may be retried before the run fails
    /// (`max_retry_seconds`).
    #[serde(rename = "max_retry_seconds", deserialize_with = "seconds")]
    pub max_retry: Duration,
    /// Fail a run whose failed edit no later edit repaired.
    pub fail_on_unrecovered_apply_patch: bool,
    /// Use this server instead of spawning one per workspace.
    pub base_url: Option<String>,
    /// That server's `OPENCODE_SERVER_PASSWORD`.
    pub password: Option<String>,
    /// New chats of each template kept ready, their sandbox made and their server started
    /// for the default model, so a new chat's first run skips the server's start. Each
    /// holds an idle server (about 500 MiB); none by default.
    pub warm_chats: usize,
}

impl Default for OpencodeSection {
    fn default() -> Self {
        Self {
            binary: None,
            start_timeout: Duration::from_secs(30),
            max_retry: Duration::from_secs(20),
            fail_on_unrecovered_apply_patch: true,
            base_url: None,
            password: None,
            warm_chats: 0,
        }
    }
}

/// `[models]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// What `auto` resolves to, as `provider/model`.
    pub default: String,
    /// Per-model facts and settings over the family defaults, keyed by `provider/model`
    /// (`[models.settings."anthropic/claude-sonnet-4-5"]`).
    pub settings: BTreeMap<String, ModelSettings>,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            default: "local/coder".into(),
            settings: BTreeMap::new(),
        }
    }
}

/// One `[[providers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Prefix of its model ids.
    pub id: String,
    /// `openai` (chat completions) or `anthropic` (Messages API).
    #[serde(deserialize_with = "provider_kind")]
    pub kind: ProviderKind,
    /// API root, e.g. `http://127.0.0.1:9999/v1`.
    pub base_url: String,
    /// Environment variable holding the API key, if it needs one.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Model names it serves.
    #[serde(default)]
    pub models: Vec<String>,
}

fn provider_kind<'de, D: Deserializer<'de>>(d: D) -> Result<ProviderKind, D::Error> {
    let text = String::deserialize(d)?;
    ProviderKind::parse(&text).ok_or_else(|| {
        serde::de::Error::custom(format!("expected openai or anthropic, got {text:?}"))
    })
}

/// `[budgets]`: spending limits, in micro-dollars (millionths of a US dollar) and tokens;
/// an absent key is no limit.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetsConfig {
    /// A run's cost limit when its request names none.
    pub run_max_cost: Option<u64>,
    /// The largest `max_cost` a request may ask for.
    pub run_max_cost_ceiling: Option<u64>,
    /// A run's token limit when its request names none.
    pub run_max_tokens: Option<u64>,
    /// The largest `max_tokens` a request may ask for.
    pub run_max_tokens_ceiling: Option<u64>,
    /// What one user's runs may cost per UTC day.
    pub user_daily_cost: Option<u64>,
    /// What one user's runs may cost per calendar month (UTC).
    pub user_monthly_cost: Option<u64>,
}

/// `[fair_use]`: how much one user, and this instance, may run at once; an absent key is
/// no limit.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FairUseConfig {
    /// Runs one user may have queued or running at once, across apps (429 beyond).
    pub user_active_runs: Option<u64>,
    /// Runs one user may create per minute (429 beyond).
    pub user_runs_per_minute: Option<u64>,
    /// Sandboxes this instance works in at once (503 beyond).
    pub instance_sandboxes: Option<u64>,
}

/// `[metrics]`: the Prometheus metrics served at `/metrics` (admin token) and the model
/// calls' accounting; both on unless turned off (to measure what they cost).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Whether metrics are recorded and `/metrics` answers.
    pub enabled: bool,
    /// Whether model calls are recorded (usage, cost and budgets need it).
    pub accounting: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            accounting: true,
        }
    }
}
