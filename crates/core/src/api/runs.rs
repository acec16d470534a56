//! Runs, models and capabilities.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AppId, Timestamp, UserId};

/// `POST …/coding-agent/runs/{run_id}/messages`: a message to a run while it works.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SteerRun {
    /// The message: up to 100,000 characters, not all blank (a prompt's rule).
    #[schema(min_length = 1, max_length = 100000, pattern = "\\S")]
    pub text: String,
}

/// `POST …/coding-agent/runs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// The prompt: up to 100,000 characters, not all blank.
    #[schema(min_length = 1, max_length = 100000, pattern = "\\S")]
    pub input: String,
    /// `provider/model` or `auto`; the policy's default when omitted.
    #[serde(default)]
    pub model_id: Option<String>,
    /// `opencode` or `native`; the policy's default when omitted.
    #[serde(default)]
    pub engine: Option<crate::EngineKind>,
    /// Continue this chat session; a new one when omitted.
    #[serde(default)]
    pub chat_session_id: Option<crate::ChatSessionId>,
    /// Pause the run once its model calls cost this many micro-dollars (millionths of a
    /// US dollar); the configured default when omitted, at most the configured ceiling.
    #[serde(default, deserialize_with = "whole_number")]
    pub max_cost: Option<u64>,
    /// Pause the run once its model calls used this many tokens (input of every kind and
    /// output); the configured default when omitted, at most the configured ceiling.
    #[serde(default, deserialize_with = "whole_number")]
    pub max_tokens: Option<u64>,
    /// What to do while the app has an active run: `fail` (409, the default) or `queue`
    /// (202 with the queued prompt).
    #[serde(default)]
    pub when_busy: Option<super::WhenBusy>,
    /// Uploads attached to the prompt (at most 10): ids, or `{"id", "into"}` objects.
    /// Images reach the model as image parts (the model needs vision), text files as text.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub attachments: Vec<super::AttachmentRef>,
}

/// A non-negative whole number, also when written with a fraction of zero (`5.0`), as JSON
/// Schema's `integer` allows.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_u64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
        _ => Err(serde::de::Error::custom(format!(
            "{number} is not a non-negative whole number"
        ))),
    }
}

/// A run's own budget: it pauses (`run.paused`, `reason: "budget"`) at the first step
/// boundary after reaching either limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunBudget {
    /// Micro-dollars; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<u64>,
    /// Tokens; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
}

impl RunBudget {
    /// Whether `usage` reached either limit.
    pub fn reached(&self, usage: &crate::UsageTotals) -> bool {
        self.max_cost.is_some_and(|max| usage.cost_micro_usd >= max)
            || self
                .max_tokens
                .is_some_and(|max| usage.total_tokens() >= max)
    }
}

/// A run as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    /// Its id.
    pub run_id: crate::RunId,
    /// Its app.
    pub app_id: AppId,
    /// Where it is in its lifecycle.
    pub status: crate::RunStatus,
    /// Engine it runs on.
    pub engine: crate::EngineKind,
    /// What the caller asked for (`auto` when omitted).
    pub requested_model_id: String,
    /// The model it is pinned to for its whole life.
    pub resolved_model_id: String,
    /// Its chat session.
    pub chat_session_id: crate::ChatSessionId,
    /// Where to follow its events.
    pub stream_url: String,
    /// The prompt.
    pub input: String,
    /// Who started it.
    pub created_by: UserId,
    /// Draft revision when it was accepted (its `pre_run` point).
    pub base_revision: i64,
    /// Draft revision it produced, once synced.
    pub result_revision: Option<i64>,
    /// The final answer, once completed.
    pub summary: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<crate::EventError>,
    /// Who asked to cancel it, when someone did.
    pub cancel_requested_by: Option<String>,
    /// Phase timings in milliseconds (`create_run`, `first_token`, `total`, …).
    #[schema(value_type = Object)]
    pub timing_metrics_ms: serde_json::Map<String, serde_json::Value>,
    /// Number of events in its log so far.
    pub last_seq: i64,
    /// Accepted at.
    pub created_at: Timestamp,
    /// Started working at.
    pub started_at: Option<Timestamp>,
    /// Reached its terminal state at.
    pub ended_at: Option<Timestamp>,
    /// What the run was given besides the prompt: `context.selected_agent_contract`, …
    #[schema(value_type = Object)]
    pub input_params: serde_json::Value,
    /// Tokens and cost of its model calls so far.
    #[serde(default)]
    pub usage: crate::api::UsageTotals,
}

/// The relative URL of a run's event stream.
pub fn stream_url(app: AppId, run: crate::RunId) -> String {
    format!("/admin/apps/{app}/coding-agent/runs/{run}/stream")
}

/// `GET …/coding-agent/runs`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunList {
    /// This page.
    pub runs: Vec<Run>,
    /// Pass as `?before=` for the next page; absent on the last one.
    pub next_before: Option<String>,
}

/// One entry of the model registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    /// `provider/model`.
    pub id: String,
    /// Provider id.
    pub provider: String,
    /// `openai` or `anthropic`.
    pub kind: String,
    /// Whether runs may use it now.
    pub available: bool,
    /// Why not, when unavailable.
    pub unavailable_reason: Option<String>,
    /// Its window, limits, vision, reasoning setting, prices and caching.
    pub facts: crate::model::ModelFacts,
}

/// `GET …/coding-agent/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    /// Every registered model.
    pub models: Vec<ModelInfo>,
    /// What `auto` resolves to now; absent when nothing is available.
    pub auto: Option<String>,
}

/// A native tool as capabilities list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NativeToolInfo {
    /// Display name.
    pub name: String,
    /// URL-safe name.
    pub slug: String,
    /// Name the model calls.
    pub function_name: String,
}

/// How the OpenCode engine is set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OpencodePolicy {
    /// Whether runs can use it now.
    pub available: bool,
    /// Why not, when unavailable.
    pub unavailable_reason: Option<String>,
    /// Tools OpenCode brings itself and that draftsmith leaves to it.
    pub delegated_tools: Vec<String>,
    /// Tools disabled because they make no sense here.
    pub disabled_tools: Vec<String>,
    /// Custom tools seeded into each workspace's `.opencode/tools/`.
    pub project_custom_tools: Vec<String>,
    /// How permission requests are answered.
    pub permission_model: String,
}

/// `GET …/coding-agent/capabilities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Capabilities {
    /// Engine used when a run names none.
    pub default_engine: crate::EngineKind,
    /// Whether `native` may be chosen.
    pub native_enabled: bool,
    /// The native toolpack.
    pub native_tools: Vec<NativeToolInfo>,
    /// Its size.
    pub native_tool_count: usize,
    /// The OpenCode engine's setup.
    pub opencode_policy: OpencodePolicy,
    /// The model registry.
    pub models: ModelList,
    /// Sandbox confinement in force: `bwrap` or `none`.
    pub sandbox_isolation: String,
    /// What sandboxes' private network reaches: `proxy` (the allow-list through the egress
    /// proxy), `none` (loopback only), `host` (no network namespace), or `unknown` (a
    /// remote controller).
    pub sandbox_egress: String,
    /// The host names the egress proxy allows.
    pub sandbox_egress_allow: Vec<String>,
    /// Who sandbox processes run as and how each resource limit is enforced; absent when
    /// the sandbox controller does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_limits: Option<SandboxLimits>,
}

/// The identity and resource limits of sandboxes (`[sandbox.limits]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SandboxLimits {
    /// `per_sandbox_uid` (an unprivileged host uid per sandbox) or `service_uid`.
    pub identity: String,
    /// Processes and threads at once.
    pub processes: LimitInForce,
    /// Memory, in MiB.
    pub memory_mib: LimitInForce,
    /// CPU weight (1024 = one ordinary share).
    pub cpu_shares: LimitInForce,
    /// Workspace size, in MiB.
    pub disk_mib: LimitInForce,
    /// Open files per process.
    pub open_files: LimitInForce,
}

/// One limit: its value (0 = off) and what enforces it: `cgroup_v2`, `cgroup_v1`,
/// `rlimit`, `off` or `unenforced`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LimitInForce {
    /// The configured value.
    pub value: u64,
    /// The mechanism.
    pub mechanism: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_take_whole_numbers_written_either_way() -> Result<(), serde_json::Error> {
        let parse = |body: &str| serde_json::from_str::<CreateRun>(body);
        let run = parse(r#"{"input": "x", "max_tokens": 5.0, "max_cost": 7}"#)?;
        assert_eq!((run.max_tokens, run.max_cost), (Some(5), Some(7)));
        assert!(parse(r#"{"input": "x", "max_tokens": 5.5}"#).is_err());
        assert!(parse(r#"{"input": "x", "max_cost": -1}"#).is_err());
        assert_eq!(parse(r#"{"input": "x"}"#)?.max_tokens, None);
        Ok(())
    }
}
