//! The environment overrides: one table, one entry per variable, each with the file key
//! it overrides and a typed parse. A value that does not parse stops the start with an
//! error naming the variable; an unset variable leaves the file's value. Entries apply in
//! table order, so a specific variable listed after a general one wins.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::{Config, ConfigError};

/// One environment variable and what it sets.
pub struct Override {
    /// The variable.
    pub var: &'static str,
    /// The file key it overrides (`section.key`).
    pub key: &'static str,
    apply: fn(&mut Config, &str) -> Result<(), String>,
}

macro_rules! overrides {
    ($($var:literal => $key:literal, |$c:ident, $v:ident| $body:expr;)*) => {
        /// Every environment override, in the order they apply.
        pub const OVERRIDES: &[Override] = &[$(Override {
            var: $var,
            key: $key,
            apply: |$c: &mut Config, $v: &str| -> Result<(), String> {
                $body;
                Ok(())
            },
        }),*];
    };
}

overrides! {
    "DRAFTSMITH_LISTEN" => "listen", |c, v| c.listen = v.to_owned();
    "DRAFTSMITH_DATA_DIR" => "data_dir", |c, v| c.data_dir = PathBuf::from(v);
    "DATABASE_URL" => "database_url", |c, v| c.database_url = v.to_owned();
    "DRAFTSMITH_ADMIN_TOKEN" => "admin_token", |c, v| c.admin_token = text(v);
    "DRAFTSMITH_MAX_FILE_BYTES" => "max_file_bytes", |c, v| c.max_file_bytes = number(v)?;
    "DRAFTSMITH_MAX_JSON_BYTES" => "max_json_bytes", |c, v| c.max_json_bytes = number(v)?;
    "DRAFTSMITH_MODELS_DEFAULT" => "models.default", |c, v| c.models.default = v.to_owned();
    "APPS_CODING_AGENT_DEFAULT_ENGINE" => "coding_agent.default_engine",
        |c, v| c.coding_agent.default_engine = Some(choice(v)?);
    "APPS_CODING_AGENT_NATIVE_ENABLED" => "coding_agent.native_enabled",
        |c, v| c.coding_agent.native_enabled = flag(v)?;
    "DRAFTSMITH_MAX_STEPS" => "coding_agent.max_steps", |c, v| c.coding_agent.max_steps = number(v)?;
    "DRAFTSMITH_MAX_COMPACTIONS" => "coding_agent.max_compactions",
        |c, v| c.coding_agent.max_compactions = number(v)?;
    "DRAFTSMITH_RUN_LEASE_SECONDS" => "coding_agent.run_lease_seconds",
        |c, v| c.coding_agent.run_lease = seconds(v)?;
    "APPS_CODING_AGENT_VERIFY" => "coding_agent.verify", |c, v| c.coding_agent.verify = flag(v)?;
    "APPS_CODING_AGENT_REPAIR_TURNS" => "coding_agent.repair_turns",
        |c, v| c.coding_agent.repair_turns = number(v)?;
    "DRAFTSMITH_QUEUE_AFTER_FAILURE" => "coding_agent.queue_after_failure",
        |c, v| c.coding_agent.queue_after_failure = choice(v)?;
    "APPS_CODING_AGENT_SANDBOX_ISOLATION" => "sandbox.isolation",
        |c, v| c.sandbox.isolation = choice(v)?;
    "APPS_CODING_AGENT_SANDBOX_TTL_SECONDS" => "sandbox.ttl_seconds", |c, v| c.sandbox.ttl = seconds(v)?;
    "DRAFTSMITH_SANDBOX_SPARES" => "sandbox.spares", |c, v| c.sandbox.spares = number(v)?;
    "DRAFTSMITH_SANDBOX_CONTROLLER_URL" => "sandbox.controller_url",
        |c, v| c.sandbox.controller_url = v.to_owned();
    "DRAFTSMITH_SANDBOX_CONTROLLER_SECRET" => "sandbox.controller_secret",
        |c, v| c.sandbox.controller_secret = v.to_owned();
    "DRAFTSMITH_SANDBOX_MAX_PROCESSES" => "sandbox.limits.processes",
        |c, v| c.sandbox.limits.processes = number(v)?;
    "DRAFTSMITH_SANDBOX_MEMORY_MIB" => "sandbox.limits.memory_mib",
        |c, v| c.sandbox.limits.memory_mib = number(v)?;
    "DRAFTSMITH_SANDBOX_CPU_SHARES" => "sandbox.limits.cpu_shares",
        |c, v| c.sandbox.limits.cpu_shares = number(v)?;
    "DRAFTSMITH_SANDBOX_DISK_MIB" => "sandbox.limits.disk_mib",
        |c, v| c.sandbox.limits.disk_mib = number(v)?;
    "DRAFTSMITH_SANDBOX_OPEN_FILES" => "sandbox.limits.open_files",
        |c, v| c.sandbox.limits.open_files = number(v)?;
    "DRAFTSMITH_SANDBOX_LIMITS_MECHANISM" => "sandbox.limits.mechanism",
        |c, v| c.sandbox.limits.mechanism = choice(v)?;
    "DRAFTSMITH_SANDBOX_UID_BASE" => "sandbox.identity.uid_base",
        |c, v| c.sandbox.identity.uid_base = number(v)?;
    "DRAFTSMITH_SANDBOX_UID_COUNT" => "sandbox.identity.uid_count",
        |c, v| c.sandbox.identity.uid_count = number(v)?;
    "DRAFTSMITH_SANDBOX_EGRESS" => "sandbox.egress.mode", |c, v| c.sandbox.egress.mode = choice(v)?;
    "DRAFTSMITH_SANDBOX_EGRESS_ALLOW" => "sandbox.egress.allow",
        |c, v| c.sandbox.egress.allow = Some(list(v));
    "DRAFTSMITH_HTTP_HEADER_TIMEOUT_SECONDS" => "http.header_timeout_seconds",
        |c, v| c.http.header_timeout = positive_seconds(v)?;
    "DRAFTSMITH_HTTP_IDLE_TIMEOUT_SECONDS" => "http.idle_timeout_seconds",
        |c, v| c.http.idle_timeout = positive_seconds(v)?;
    "DRAFTSMITH_HTTP_BODY_TIMEOUT_SECONDS" => "http.body_timeout_seconds",
        |c, v| c.http.body_timeout = positive_seconds(v)?;
    "DRAFTSMITH_HTTP_MAX_CONNECTIONS" => "http.max_connections",
        |c, v| c.http.max_connections = positive(v)?;
    "DRAFTSMITH_TRUST_PROXY_HEADERS" => "http.trust_proxy_headers",
        |c, v| c.http.trust_proxy_headers = flag(v)?;
    "DRAFTSMITH_SECURE_COOKIES" => "http.secure_cookies", |c, v| c.http.secure_cookies = flag(v)?;
    "DRAFTSMITH_SSE_KEEPALIVE_MS" => "http.sse_keepalive_seconds",
        |c, v| c.http.sse_keepalive = Duration::from_millis(positive(v)?);
    "DRAFTSMITH_UPLOADS_MAX_BYTES" => "uploads.max_bytes", |c, v| c.uploads.max_bytes = number(v)?;
    "DRAFTSMITH_UPLOADS_TYPES" => "uploads.types", |c, v| c.uploads.types = list(v);
    "DRAFTSMITH_PUBLISH_APPS_DOMAIN" => "publish.apps_domain", |c, v| c.publish.apps_domain = v.to_owned();
    "DRAFTSMITH_PUBLISH_CACHE_MIB" => "publish.cache_mib", |c, v| c.publish.cache_mib = number(v)?;
    "DRAFTSMITH_BUDGET_RUN_MAX_COST" => "budgets.run_max_cost",
        |c, v| c.budgets.run_max_cost = limit(v)?;
    "DRAFTSMITH_BUDGET_RUN_MAX_COST_CEILING" => "budgets.run_max_cost_ceiling",
        |c, v| c.budgets.run_max_cost_ceiling = limit(v)?;
    "DRAFTSMITH_BUDGET_RUN_MAX_TOKENS" => "budgets.run_max_tokens",
        |c, v| c.budgets.run_max_tokens = limit(v)?;
    "DRAFTSMITH_BUDGET_RUN_MAX_TOKENS_CEILING" => "budgets.run_max_tokens_ceiling",
        |c, v| c.budgets.run_max_tokens_ceiling = limit(v)?;
    "DRAFTSMITH_BUDGET_USER_DAILY_COST" => "budgets.user_daily_cost",
        |c, v| c.budgets.user_daily_cost = limit(v)?;
    "DRAFTSMITH_BUDGET_USER_MONTHLY_COST" => "budgets.user_monthly_cost",
        |c, v| c.budgets.user_monthly_cost = limit(v)?;
    "DRAFTSMITH_FAIR_USE_USER_ACTIVE_RUNS" => "fair_use.user_active_runs",
        |c, v| c.fair_use.user_active_runs = limit(v)?;
    "DRAFTSMITH_FAIR_USE_USER_RUNS_PER_MINUTE" => "fair_use.user_runs_per_minute",
        |c, v| c.fair_use.user_runs_per_minute = limit(v)?;
    "DRAFTSMITH_FAIR_USE_INSTANCE_SANDBOXES" => "fair_use.instance_sandboxes",
        |c, v| c.fair_use.instance_sandboxes = limit(v)?;
    "DRAFTSMITH_METRICS" => "metrics.enabled", |c, v| c.metrics.enabled = flag(v)?;
    "DRAFTSMITH_METRICS_ACCOUNTING" => "metrics.accounting", |c, v| c.metrics.accounting = flag(v)?;
    "DRAFTSMITH_OPENCODE_BIN" => "opencode.binary", |c, v| c.opencode.binary = text(v).map(PathBuf::from);
    "APPS_DRAFT_DEV_CONTROLLER_TIMEOUT_SECONDS" => "opencode.start_timeout_seconds",
        |c, v| c.opencode.start_timeout = seconds(v)?.max(Duration::from_secs(30));
    "APPS_DRAFT_DEV_CONTROLLER_OPENCODE_START_TIMEOUT_SECONDS" => "opencode.start_timeout_seconds",
        |c, v| c.opencode.start_timeout = seconds(v)?;
    "APPS_CODING_AGENT_OPENCODE_MAX_RETRY_SECONDS" => "opencode.max_retry_seconds",
        |c, v| c.opencode.max_retry = seconds(v)?;
    "APPS_CODING_AGENT_OPENCODE_FAIL_ON_UNRECOVERED_APPLY_PATCH" => "opencode.fail_on_unrecovered_apply_patch",
        |c, v| c.opencode.fail_on_unrecovered_apply_patch = flag(v)?;
    "APPS_CODING_AGENT_OPENCODE_BASE_URL" => "opencode.base_url", |c, v| c.opencode.base_url = text(v);
    "DRAFTSMITH_OPENCODE_WARM_CHATS" => "opencode.warm_chats", |c, v| c.opencode.warm_chats = number(v)?;
    "APPS_CODING_AGENT_OPENCODE_PASSWORD" => "opencode.password", |c, v| c.opencode.password = text(v);
}

/// Applies every variable `env` has, in table order.
pub(super) fn apply(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for entry in OVERRIDES {
        if let Some(value) = env(entry.var) {
            (entry.apply)(config, value.trim()).map_err(|message| ConfigError::Env {
                var: entry.var,
                message,
            })?;
        }
    }
    Ok(())
}

/// An optional limit: a whole number, or empty for no limit.
fn limit(v: &str) -> Result<Option<u64>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    number(v).map(Some)
}

/// A value that may be left empty to unset it.
fn text(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

fn number<T: FromStr>(v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("expected a whole number, got {v:?}"))
}

fn positive<T: FromStr + Default + PartialOrd>(v: &str) -> Result<T, String> {
    number(v)
        .ok()
        .filter(|n| *n > T::default())
        .ok_or_else(|| format!("expected a positive number, got {v:?}"))
}

fn seconds(v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("expected seconds, got {v:?}"))
}

fn positive_seconds(v: &str) -> Result<Duration, String> {
    seconds(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("expected a positive number of seconds, got {v:?}"))
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`, and nothing else.
fn flag(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "expected 1/true/yes/on or 0/false/no/off, got {v:?}"
        )),
    }
}

/// A choice spelled as in the file (`auto`, `native`, …).
fn choice<T: serde::de::DeserializeOwned>(v: &str) -> Result<T, String> {
    use serde::de::IntoDeserializer;
    let lower = v.to_ascii_lowercase();
    T::deserialize(lower.as_str().into_deserializer())
        .map_err(|e: serde::de::value::Error| format!("{e}, got {v:?}"))
}

/// A comma-separated list, blanks dropped.
fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect()
}
