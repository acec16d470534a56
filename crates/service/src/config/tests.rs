#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use draftsmith_core::EngineKind;
use draftsmith_sandbox::{IsolationMode, LimitsMechanism};

use super::*;

/// A configuration file in a directory of its own.
struct File(tempfile::TempDir);

impl File {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("draftsmith.toml"), text).unwrap();
        Self(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.path().join("draftsmith.toml")
    }

    fn load(&self, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load(Some(&self.path()), &|k| vars.get(k).cloned())
    }
}

/// `key = value` in the file is read, and `var` overrides it.
fn file_then_env<T: PartialEq + std::fmt::Debug>(
    file: &str,
    var: (&str, &str),
    read: impl Fn(&Config) -> T,
    (from_file, from_env): (T, T),
) {
    let file = File::new(file);
    assert_eq!(
        read(&file.load(&[]).unwrap()),
        from_file,
        "the file's value"
    );
    assert_eq!(
        read(&file.load(&[var]).unwrap()),
        from_env,
        "{} overrides",
        var.0
    );
}

#[test]
fn server_keys_from_the_file_and_the_environment() {
    file_then_env(
        "listen = \"0.0.0.0:9000\"\nmax_file_bytes = 10\n",
        ("DRAFTSMITH_MAX_FILE_BYTES", "20"),
        |c| (c.listen.clone(), c.max_file_bytes),
        (("0.0.0.0:9000".into(), 10), ("0.0.0.0:9000".into(), 20)),
    );
    file_then_env(
        "database_url = \"\"\n",
        ("DATABASE_URL", "postgres://x/y"),
        |c| c.database_target(),
        (
            DatabaseTarget::Sqlite(PathBuf::from(".draftsmith/draftsmith.db")),
            DatabaseTarget::Url("postgres://x/y".into()),
        ),
    );
    file_then_env(
        "admin_token = \"from-file\"\n",
        ("DRAFTSMITH_ADMIN_TOKEN", "from-env"),
        |c| c.admin_token.clone(),
        (Some("from-file".into()), Some("from-env".into())),
    );
}

#[test]
fn coding_agent_section() {
    file_then_env(
        "[coding_agent]\ndefault_engine = \"native\"\nrun_lease_seconds = 2.5\nverify = false\n",
        ("APPS_CODING_AGENT_DEFAULT_ENGINE", "opencode"),
        |c| (c.default_engine(), c.run_lease(), c.coding_agent.verify),
        (
            (EngineKind::Native, Duration::from_millis(2500), false),
            (EngineKind::Opencode, Duration::from_millis(2500), false),
        ),
    );
    file_then_env(
        "[coding_agent]\nverify = false\n",
        ("APPS_CODING_AGENT_VERIFY", "on"),
        |c| c.coding_agent.verify,
        (false, true),
    );
    assert_eq!(Config::default().default_engine(), EngineKind::Opencode);
}

#[test]
fn sandbox_section() {
    file_then_env(
        "[sandbox]\nisolation = \"none\"\nttl_seconds = 60\n[sandbox.limits]\nprocesses = 64\nmechanism = \"rlimit\"\n",
        ("APPS_CODING_AGENT_SANDBOX_TTL_SECONDS", "0.5"),
        |c| {
            let s = &c.sandbox;
            (s.isolation, s.ttl, s.limits.processes, s.limits.mechanism)
        },
        (
            (
                IsolationMode::None,
                Duration::from_secs(60),
                64,
                LimitsMechanism::Rlimit,
            ),
            (
                IsolationMode::None,
                Duration::from_millis(500),
                64,
                LimitsMechanism::Rlimit,
            ),
        ),
    );
    file_then_env(
        "[sandbox]\nspares = 5\n",
        ("DRAFTSMITH_SANDBOX_SPARES", "0"),
        |c| c.sandbox.spares,
        (5, 0),
    );
    file_then_env(
        "[sandbox.limits]\nmemory_mib = 100\n",
        ("DRAFTSMITH_SANDBOX_MEMORY_MIB", " 128 "),
        |c| c.sandbox.limits.memory_mib,
        (100, 128),
    );
    file_then_env(
        "[sandbox.identity]\nuid_base = 200000\n",
        ("DRAFTSMITH_SANDBOX_UID_COUNT", "10"),
        |c| (c.sandbox.identity.uid_base, c.sandbox.identity.uid_count),
        ((200_000, 65_536), (200_000, 10)),
    );
}

#[test]
fn egress_in_both_spellings_and_from_the_environment() {
    let config = File::new("[sandbox]\negress = \"none\"\n")
        .load(&[])
        .unwrap();
    assert_eq!(config.egress_policy().unwrap().as_str(), "none");
    let file = File::new("[sandbox.egress]\nallow = [\"registry.npmjs.org\", \"*.example.com\"]\n");
    let policy = file.load(&[]).unwrap().egress_policy().unwrap();
    assert_eq!(policy.as_str(), "proxy");
    assert_eq!(policy.allowed(), ["registry.npmjs.org", "*.example.com"]);
    let config = file
        .load(&[("DRAFTSMITH_SANDBOX_EGRESS_ALLOW", "a.example, b.example")])
        .unwrap();
    assert_eq!(
        config.egress_policy().unwrap().allowed(),
        ["a.example", "b.example"]
    );
    let err = file
        .load(&[("DRAFTSMITH_SANDBOX_EGRESS", "open")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("DRAFTSMITH_SANDBOX_EGRESS"), "{err}");
    let err = File::new("[sandbox]\negress = \"open\"\n")
        .load(&[])
        .unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
}

#[test]
fn opencode_section() {
    file_then_env(
        "[opencode]\nstart_timeout_seconds = 45\nmax_retry_seconds = 5\nfail_on_unrecovered_apply_patch = false\n",
        (
            "APPS_DRAFT_DEV_CONTROLLER_OPENCODE_START_TIMEOUT_SECONDS",
            "7",
        ),
        |c| {
            let o = &c.opencode;
            (
                o.start_timeout,
                o.max_retry,
                o.fail_on_unrecovered_apply_patch,
            )
        },
        (
            (Duration::from_secs(45), Duration::from_secs(5), false),
            (Duration::from_secs(7), Duration::from_secs(5), false),
        ),
    );
    // The controller's timeout sets the start timeout (at least 30 s) unless the specific
    // variable is set too.
    let file = File::new("");
    let both = [
        ("APPS_DRAFT_DEV_CONTROLLER_TIMEOUT_SECONDS", "10"),
        (
            "APPS_CODING_AGENT_OPENCODE_BASE_URL",
            "http://127.0.0.1:4096",
        ),
    ];
    let config = file.load(&both).unwrap();
    assert_eq!(config.opencode.start_timeout, Duration::from_secs(30));
    assert_eq!(
        config.opencode.base_url.as_deref(),
        Some("http://127.0.0.1:4096")
    );
    let config = file
        .load(&[
            ("APPS_DRAFT_DEV_CONTROLLER_TIMEOUT_SECONDS", "45"),
            (
                "APPS_DRAFT_DEV_CONTROLLER_OPENCODE_START_TIMEOUT_SECONDS",
                "8",
            ),
        ])
        .unwrap();
    assert_eq!(config.opencode.start_timeout, Duration::from_secs(8));
}

#[test]
fn http_and_publish_sections() {
    file_then_env(
        "[http]\nheader_timeout_seconds = 2\nsse_keepalive_seconds = 5\n",
        ("DRAFTSMITH_SSE_KEEPALIVE_MS", "250"),
        |c| (c.http.header_timeout(), c.http.sse_keepalive()),
        (
            (Duration::from_secs(2), Duration::from_secs(5)),
            (Duration::from_secs(2), Duration::from_millis(250)),
        ),
    );
    file_then_env(
        "[publish]\ncache_mib = 8\n",
        ("DRAFTSMITH_PUBLISH_APPS_DOMAIN", "apps.example"),
        |c| (c.publish.cache_mib, c.publish.apps_domain.clone()),
        ((8, String::new()), (8, "apps.example".into())),
    );
}

#[test]
fn models_and_providers() {
    let file = File::new(
        "[[providers]]\nid = \"claude\"\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:9999/v1\"\nmodels = [\"claude-sonnet-4-5\"]\n\
         [models]\ndefault = \"claude/claude-sonnet-4-5\"\n\
         [models.settings.\"claude/claude-sonnet-4-5\"]\nthinking_budget = 4000\nprices = { input = 3.0, output = 15.0 }\n",
    );
    let config = file.load(&[]).unwrap();
    assert_eq!(config.providers[0].kind, ProviderKind::Anthropic);
    let registry = config.model_registry(&|_| None, None).unwrap();
    let facts = registry.facts("claude/claude-sonnet-4-5").unwrap();
    assert_eq!(facts.thinking_budget, Some(4000));
    assert_eq!(facts.prices.unwrap().output, 15_000_000);
    let config = file
        .load(&[("DRAFTSMITH_MODELS_DEFAULT", "claude/other")])
        .unwrap();
    assert_eq!(config.models.default, "claude/other");
    let mut bad = config.clone();
    bad.models
        .settings
        .values_mut()
        .for_each(|s| s.thinking_budget = Some(10));
    let err = bad
        .model_registry(&|_| None, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("claude/claude-sonnet-4-5") && err.contains("minimum"),
        "{err}"
    );
    let err = File::new("[[providers]]\nid = \"x\"\nkind = \"gemini\"\nbase_url = \"http://h\"\n")
        .load(&[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected openai or anthropic"), "{err}");
}

#[test]
fn a_bad_value_names_its_variable_and_an_unknown_key_its_name() {
    let file = File::new("");
    for (var, value) in [
        (
            "APPS_DRAFT_DEV_CONTROLLER_OPENCODE_START_TIMEOUT_SECONDS",
            "abc",
        ),
        ("APPS_CODING_AGENT_NATIVE_ENABLED", "maybe"),
        ("APPS_CODING_AGENT_DEFAULT_ENGINE", "gpt"),
        ("APPS_CODING_AGENT_SANDBOX_ISOLATION", "docker"),
        ("DRAFTSMITH_SANDBOX_LIMITS_MECHANISM", "ulimit"),
        ("DRAFTSMITH_SANDBOX_OPEN_FILES", "many"),
        ("DRAFTSMITH_HTTP_MAX_CONNECTIONS", "0"),
        ("DRAFTSMITH_SANDBOX_UID_BASE", "0"),
        ("DRAFTSMITH_RUN_LEASE_SECONDS", "-1"),
    ] {
        let err = file.load(&[(var, value)]).unwrap_err().to_string();
        assert!(err.contains(var), "{var}={value}: {err}");
    }
    let err = File::new("listne = 1\n").load(&[]).unwrap_err().to_string();
    assert!(err.contains("listne"), "{err}");
}

#[test]
fn every_override_names_a_key_of_the_file() {
    let mut vars: Vec<&str> = OVERRIDES.iter().map(|o| o.var).collect();
    vars.sort_unstable();
    let before = vars.len();
    vars.dedup();
    assert_eq!(before, vars.len(), "a variable listed twice");
    for entry in OVERRIDES {
        let (section, key) = entry.key.rsplit_once('.').unwrap_or(("", entry.key));
        let header = if section.is_empty() {
            String::new()
        } else {
            format!("[{section}]\n")
        };
        // A value of the wrong type for the key shows the file knows the key (an unknown
        // key is refused by name instead).
        let err = File::new(&format!("{header}{key} = {{ bogus = 1 }}\n"))
            .load(&[])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("unknown field"), "{}: {err}", entry.key);
    }
}

#[test]
fn budgets_fair_use_and_metrics_from_the_file_and_the_environment() {
    file_then_env(
        "[budgets]\nuser_daily_cost = 5000\nrun_max_tokens = 100\n",
        ("DRAFTSMITH_BUDGET_USER_DAILY_COST", "7000"),
        |c| (c.budgets.user_daily_cost, c.budgets.run_max_tokens),
        ((Some(5000), Some(100)), (Some(7000), Some(100))),
    );
    // An empty value lifts the file's limit.
    file_then_env(
        "[budgets]\nrun_max_cost_ceiling = 9\n",
        ("DRAFTSMITH_BUDGET_RUN_MAX_COST_CEILING", ""),
        |c| c.budgets.run_max_cost_ceiling,
        (Some(9), None),
    );
    file_then_env(
        "[fair_use]\ninstance_sandboxes = 4\n",
        ("DRAFTSMITH_FAIR_USE_INSTANCE_SANDBOXES", "2"),
        |c| c.fair_use.instance_sandboxes,
        (Some(4), Some(2)),
    );
    file_then_env(
        "",
        ("DRAFTSMITH_FAIR_USE_USER_RUNS_PER_MINUTE", "3"),
        |c| (c.fair_use.user_runs_per_minute, c.fair_use.user_active_runs),
        ((None, None), (Some(3), None)),
    );
    file_then_env(
        "[metrics]\naccounting = false\n",
        ("DRAFTSMITH_METRICS", "off"),
        |c| (c.metrics.enabled, c.metrics.accounting),
        ((true, false), (false, false)),
    );
    let file = File::new("");
    for (var, value) in [
        ("DRAFTSMITH_BUDGET_USER_MONTHLY_COST", "-1"),
        ("DRAFTSMITH_FAIR_USE_USER_ACTIVE_RUNS", "many"),
        ("DRAFTSMITH_METRICS_ACCOUNTING", "maybe"),
    ] {
        match file.load(&[(var, value)]) {
            Err(ConfigError::Env { var: named, .. }) => assert_eq!(named, var),
            other => panic!("{var}={value}: {other:?}"),
        }
    }
}

#[test]
fn chats_made_ahead_from_the_file_and_the_environment() {
    file_then_env(
        "[opencode]\nwarm_chats = 1\n",
        ("DRAFTSMITH_OPENCODE_WARM_CHATS", "2"),
        |c| c.opencode.warm_chats,
        (1, 2),
    );
    let config = File::new("").load(&[]).unwrap();
    assert_eq!(config.opencode.warm_chats, 0, "none by default");
    let config = File::new("[opencode]\nwarm_chats = 1\n").load(&[]).unwrap();
    let warm =
        crate::startup::runner_config(&config, draftsmith_core::InstanceId::new()).warm_chats;
    assert_eq!(warm.per_template, 1);
    let templates: Vec<&str> = draftsmith_templates::all().iter().map(|t| t.id).collect();
    assert_eq!(
        warm.templates, templates,
        "every template the service offers"
    );
}
