//! Configuration (SPEC §8): one TOML file, every key overridable by the environment.
//! Environment names are `DRAFTSMITH_<KEY>` plus the names the SPEC fixes
//! (`DATABASE_URL`, the `APPS_…` variables).

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use draftsmith_engine::{ModelRegistry, ModelSettings, ProviderKind, ProviderSpec};
use serde::Deserialize;

/// Everything `draftsmith serve` reads at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// SQLite file and sandboxes live here.
    pub data_dir: PathBuf,
    /// Empty: SQLite in `data_dir`; otherwise a `postgres://` URL.
    pub database_url: String,
    /// Largest draft file accepted, in bytes.
    pub max_file_bytes: usize,
    /// Largest JSON request body accepted, in bytes.
    pub max_json_bytes: usize,
    /// The model registry's defaults.
    pub models: ModelsConfig,
    /// Model providers.
    pub providers: Vec<ProviderConfig>,
    /// How runs are executed.
    pub coding_agent: CodingAgentConfig,
    /// Where runs work.
    pub sandbox: SandboxConfig,
    /// Limits of the HTTP edge.
    pub http: crate::edge::HttpConfig,
    /// How published apps are served.
    pub publish: PublishConfig,
}

/// `[publish]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishConfig {
    /// Serve each published app at `{slug}.{apps_domain}` too, as its own origin
    /// (`DRAFTSMITH_PUBLISH_APPS_DOMAIN`); empty: only at `/p/{slug}/`.
    pub apps_domain: String,
    /// Memory for hot published files, in MiB (`DRAFTSMITH_PUBLISH_CACHE_MIB`).
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
    /// `auto`, `bwrap` or `none` (`APPS_CODING_AGENT_SANDBOX_ISOLATION`).
    pub isolation: String,
    /// How long an idle sandbox stays warm (`APPS_CODING_AGENT_SANDBOX_TTL_SECONDS`).
    pub ttl_seconds: f64,
    /// A separate `draftsmith sandbox-controller` to use instead of the in-process one
    /// (`DRAFTSMITH_SANDBOX_CONTROLLER_URL`).
    pub controller_url: String,
    /// The secret it expects (`DRAFTSMITH_SANDBOX_CONTROLLER_SECRET`).
    pub controller_secret: String,
    /// `[sandbox.limits]`: processes, memory, CPU share, workspace size, open files.
    pub limits: draftsmith_sandbox::Limits,
    /// `[sandbox.identity]`: the uids sandboxes run as when the service is root.
    pub identity: draftsmith_sandbox::IdentityConfig,
    /// `[sandbox.egress]`: what the sandbox's private network may reach.
    pub egress: EgressConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            isolation: "auto".into(),
            ttl_seconds: 1800.0,
            controller_url: String::new(),
            controller_secret: String::new(),
            limits: draftsmith_sandbox::Limits::default(),
            identity: draftsmith_sandbox::IdentityConfig::default(),
            egress: EgressConfig::default(),
        }
    }
}

/// `[sandbox.egress]` (`mode`, `allow`), or `egress = "none"` / `"proxy"` under `[sandbox]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "EgressSetting")]
pub struct EgressConfig {
    /// `proxy` (default: the allow-list through the egress proxy) or `none` (no network)
    /// (`DRAFTSMITH_SANDBOX_EGRESS`).
    pub mode: String,
    /// Host names the proxy allows (`*.example.com` for subdomains); unset: the host of
    /// the registry the host's npm is configured with (`DRAFTSMITH_SANDBOX_EGRESS_ALLOW`,
    /// comma-separated).
    pub allow: Option<Vec<String>>,
}

/// The two spellings of the egress setting.
#[derive(Deserialize)]
#[serde(untagged)]
enum EgressSetting {
    Mode(String),
    Table(EgressTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressTable {
    #[serde(default)]
    mode: String,
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
    /// `opencode` or `native` (`APPS_CODING_AGENT_DEFAULT_ENGINE`).
    pub default_engine: String,
    /// Whether `native` may be used (`APPS_CODING_AGENT_NATIVE_ENABLED=1`).
    pub native_enabled: bool,
    /// Model turns before a run pauses (`DRAFTSMITH_MAX_STEPS`).
    pub max_steps: usize,
    /// Lease on an executing run; another instance ends it once expired
    /// (`DRAFTSMITH_RUN_LEASE_SECONDS`).
    pub run_lease_seconds: f64,
    /// Run the template's verification commands after the agent's edits
    /// (`APPS_CODING_AGENT_VERIFY`, default on).
    pub verify: bool,
    /// Turns the agent gets to repair a failed verification (`APPS_CODING_AGENT_REPAIR_TURNS`).
    pub repair_turns: usize,
}

impl Default for CodingAgentConfig {
    fn default() -> Self {
        Self {
            default_engine: "opencode".into(),
            native_enabled: false,
            max_steps: 40,
            run_lease_seconds: 15.0,
            verify: true,
            repair_turns: 2,
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

/// One `[[providers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Prefix of its model ids.
    pub id: String,
    /// `openai` (chat completions) or `anthropic` (Messages API).
    pub kind: String,
    /// API root, e.g. `http://127.0.0.1:9999/v1`.
    pub base_url: String,
    /// Environment variable holding the API key, if it needs one.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Model names it serves.
    #[serde(default)]
    pub models: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8787".into(),
            data_dir: PathBuf::from(".draftsmith"),
            database_url: String::new(),
            max_file_bytes: 5 * 1024 * 1024,
            max_json_bytes: 1024 * 1024,
            models: ModelsConfig::default(),
            providers: Vec::new(),
            coding_agent: CodingAgentConfig::default(),
            sandbox: SandboxConfig::default(),
            http: crate::edge::HttpConfig::default(),
            publish: PublishConfig::default(),
        }
    }
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self {
            default: "local/coder".into(),
            settings: BTreeMap::new(),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for [`Config`].
    #[error("invalid configuration in {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with the line.
        message: String,
    },
    /// An environment override has the wrong form.
    #[error("invalid value for {var}: {message}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads `path` (when given, or `./draftsmith.toml` when present), then applies
    /// environment overrides read through `env`.
    pub fn load(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let default_path = Path::new("draftsmith.toml");
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None if default_path.exists() => Some(default_path.to_path_buf()),
            None => None,
        };
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path,
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("DRAFTSMITH_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env("DRAFTSMITH_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = env("DRAFTSMITH_MAX_FILE_BYTES") {
            self.max_file_bytes = parse_usize("DRAFTSMITH_MAX_FILE_BYTES", &v)?;
        }
        if let Some(v) = env("DRAFTSMITH_MAX_JSON_BYTES") {
            self.max_json_bytes = parse_usize("DRAFTSMITH_MAX_JSON_BYTES", &v)?;
        }
        if let Some(v) = env("DRAFTSMITH_MODELS_DEFAULT") {
            self.models.default = v;
        }
        if let Some(v) = env("APPS_CODING_AGENT_DEFAULT_ENGINE") {
            self.coding_agent.default_engine = v;
        }
        if let Some(v) = env("APPS_CODING_AGENT_NATIVE_ENABLED") {
            self.coding_agent.native_enabled = matches!(v.trim(), "1" | "true" | "yes");
        }
        if let Some(v) = env("DRAFTSMITH_MAX_STEPS") {
            self.coding_agent.max_steps = parse_usize("DRAFTSMITH_MAX_STEPS", &v)?;
        }
        if let Some(v) = env("DRAFTSMITH_RUN_LEASE_SECONDS") {
            self.coding_agent.run_lease_seconds =
                v.trim().parse().map_err(|_| ConfigError::Env {
                    var: "DRAFTSMITH_RUN_LEASE_SECONDS",
                    message: format!("expected seconds, got {v:?}"),
                })?;
        }
        if let Some(v) = env("APPS_CODING_AGENT_VERIFY") {
            self.coding_agent.verify = !matches!(v.trim(), "0" | "false" | "no");
        }
        if let Some(v) = env("APPS_CODING_AGENT_REPAIR_TURNS") {
            self.coding_agent.repair_turns = parse_usize("APPS_CODING_AGENT_REPAIR_TURNS", &v)?;
        }
        if let Some(v) = env("APPS_CODING_AGENT_SANDBOX_ISOLATION") {
            self.sandbox.isolation = v;
        }
        if let Some(v) = env("APPS_CODING_AGENT_SANDBOX_TTL_SECONDS") {
            self.sandbox.ttl_seconds = v.trim().parse().map_err(|_| ConfigError::Env {
                var: "APPS_CODING_AGENT_SANDBOX_TTL_SECONDS",
                message: format!("expected seconds, got {v:?}"),
            })?;
        }
        if let Some(v) = env("DRAFTSMITH_SANDBOX_CONTROLLER_URL") {
            self.sandbox.controller_url = v;
        }
        if let Some(v) = env("DRAFTSMITH_SANDBOX_CONTROLLER_SECRET") {
            self.sandbox.controller_secret = v;
        }
        self.http.apply_env(env)?;
        if let Some(v) = env("DRAFTSMITH_PUBLISH_APPS_DOMAIN") {
            self.publish.apps_domain = v;
        }
        if let Some(v) = env("DRAFTSMITH_PUBLISH_CACHE_MIB") {
            self.publish.cache_mib = parse_usize("DRAFTSMITH_PUBLISH_CACHE_MIB", &v)?;
        }
        let invalid = |(var, message): (&'static str, String)| ConfigError::Env { var, message };
        self.sandbox.limits.apply_env(env).map_err(invalid)?;
        self.sandbox.identity.apply_env(env).map_err(invalid)?;
        if let Some(v) = env("DRAFTSMITH_SANDBOX_EGRESS") {
            self.sandbox.egress.mode = v;
        }
        if let Some(v) = env("DRAFTSMITH_SANDBOX_EGRESS_ALLOW") {
            let hosts = v
                .split(',')
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty());
            self.sandbox.egress.allow = Some(hosts.collect());
        }
        self.isolation_mode()?;
        self.egress_mode_valid()?;
        self.default_engine()?;
        Ok(())
    }

    /// The configured sandbox isolation mode.
    pub fn isolation_mode(&self) -> Result<draftsmith_sandbox::IsolationMode, ConfigError> {
        self.sandbox
            .isolation
            .trim()
            .parse()
            .map_err(|_| ConfigError::Env {
                var: "APPS_CODING_AGENT_SANDBOX_ISOLATION",
                message: format!(
                    "expected auto, bwrap or none, got {:?}",
                    self.sandbox.isolation
                ),
            })
    }

    fn egress_mode_valid(&self) -> Result<(), ConfigError> {
        draftsmith_sandbox::EgressPolicy::parse(&self.sandbox.egress.mode, [""; 0])
            .map(|_| ())
            .map_err(|_| ConfigError::Env {
                var: "DRAFTSMITH_SANDBOX_EGRESS",
                message: format!("expected proxy or none, got {:?}", self.sandbox.egress.mode),
            })
    }

    /// What sandboxes may reach: the configured allow-list, or by default the host of the
    /// registry the host's npm uses (asked once, here).
    pub fn egress_policy(&self) -> Result<draftsmith_sandbox::EgressPolicy, ConfigError> {
        self.egress_mode_valid()?;
        let allow = match &self.sandbox.egress.allow {
            Some(allow) => allow.clone(),
            None if self.sandbox.egress.mode.trim().eq_ignore_ascii_case("none") => Vec::new(),
            None => vec![draftsmith_sandbox::npm_registry_host()],
        };
        draftsmith_sandbox::EgressPolicy::parse(&self.sandbox.egress.mode, allow).map_err(|e| {
            ConfigError::Env {
                var: "DRAFTSMITH_SANDBOX_EGRESS",
                message: e.to_string(),
            }
        })
    }

    /// The configured default engine.
    pub fn default_engine(&self) -> Result<draftsmith_core::EngineKind, ConfigError> {
        draftsmith_core::EngineKind::parse(self.coding_agent.default_engine.trim()).ok_or_else(
            || ConfigError::Env {
                var: "APPS_CODING_AGENT_DEFAULT_ENGINE",
                message: format!(
                    "expected opencode or native, got {:?}",
                    self.coding_agent.default_engine
                ),
            },
        )
    }

    /// The model registry: configured providers, then `OPENAI_API_KEY` and
    /// `ANTHROPIC_API_KEY` when set, then the demo provider when given.
    pub fn model_registry(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        demo_base_url: Option<&str>,
    ) -> Result<ModelRegistry, ConfigError> {
        let mut specs = Vec::new();
        for p in &self.providers {
            let kind = ProviderKind::parse(&p.kind).ok_or_else(|| ConfigError::Env {
                var: "providers.kind",
                message: format!(
                    "provider {}: expected openai or anthropic, got {:?}",
                    p.id, p.kind
                ),
            })?;
            let key = p.api_key_env.as_deref().and_then(env);
            specs.push(ProviderSpec {
                id: p.id.clone(),
                kind,
                base_url: p.base_url.clone(),
                missing_key_env: p.api_key_env.clone().filter(|_| key.is_none()),
                api_key: key,
                models: p.models.clone(),
                demo: false,
            });
        }
        let well_known = [
            (
                "openai",
                ProviderKind::OpenAi,
                "OPENAI",
                "https://api.openai.com/v1",
                "gpt-4.1-mini,gpt-4.1",
            ),
            (
                "anthropic",
                ProviderKind::Anthropic,
                "ANTHROPIC",
                "https://api.anthropic.com/v1",
                "claude-sonnet-4-5",
            ),
        ];
        for (id, kind, prefix, base, models) in well_known {
            let Some(key) = env(&format!("{prefix}_API_KEY")).filter(|k| !k.is_empty()) else {
                continue;
            };
            if specs.iter().any(|s| s.id == id) {
                continue;
            }
            let models = env(&format!("{prefix}_MODELS")).unwrap_or_else(|| models.to_owned());
            specs.push(ProviderSpec {
                id: id.into(),
                kind,
                base_url: env(&format!("{prefix}_BASE_URL")).unwrap_or_else(|| base.to_owned()),
                api_key: Some(key),
                missing_key_env: None,
                models: models
                    .split(',')
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect(),
                demo: false,
            });
        }
        if let Some(base) = demo_base_url {
            specs.push(ProviderSpec {
                id: "demo".into(),
                kind: ProviderKind::OpenAi,
                base_url: base.to_owned(),
                api_key: None,
                missing_key_env: None,
                models: vec!["coder".into()],
                demo: true,
            });
        }
        ModelRegistry::new(specs, self.models.default.clone())
            .with_settings(&self.models.settings)
            .map_err(|e| ConfigError::Env {
                var: "models.settings",
                message: e.0,
            })
    }

    /// The database to open: `database_url`, or the SQLite file in `data_dir`.
    pub fn database_target(&self) -> DatabaseTarget {
        if self.database_url.trim().is_empty() {
            DatabaseTarget::Sqlite(self.data_dir.join("draftsmith.db"))
        } else {
            DatabaseTarget::Url(self.database_url.clone())
        }
    }
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// An embedded SQLite file.
    Sqlite(PathBuf),
    /// A database URL.
    Url(String),
}

fn parse_usize(var: &'static str, value: &str) -> Result<usize, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Env {
        var,
        message: format!("expected a number of bytes, got {value:?}"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn file_then_environment() {
        let dir = std::env::temp_dir().join(format!("ds-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("draftsmith.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\n[models]\ndefault = \"local/coder\"\n\
             [[providers]]\nid = \"local\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9999/v1\"\nmodels = [\"coder\"]\n",
        )
        .unwrap();
        let env = |k: &str| (k == "DATABASE_URL").then(|| "postgres://x/y".to_owned());
        let config = Config::load(Some(&file), &env).unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.providers[0].models, vec!["coder".to_owned()]);
        assert_eq!(
            config.database_target(),
            DatabaseTarget::Url("postgres://x/y".into())
        );
        std::fs::write(
            &file,
            "[[providers]]\nid = \"claude\"\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:9999/v1\"\nmodels = [\"claude-sonnet-4-5\"]\n\
             [models.settings.\"claude/claude-sonnet-4-5\"]\nthinking_budget = 4000\nprices = { input = 3.0, output = 15.0 }\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), &|_| None).unwrap();
        let registry = config.model_registry(&|_| None, None).unwrap();
        let facts = registry.facts("claude/claude-sonnet-4-5").unwrap();
        assert_eq!(facts.thinking_budget, Some(4000));
        assert_eq!(facts.prices.unwrap().output, 15_000_000);
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
        std::fs::write(&file, "listne = 1\n").unwrap();
        let err = Config::load(Some(&file), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("listne"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn egress_in_both_spellings_and_from_the_environment() {
        let dir = std::env::temp_dir().join(format!("ds-egress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("draftsmith.toml");
        std::fs::write(&file, "[sandbox]\negress = \"none\"\n").unwrap();
        let config = Config::load(Some(&file), &|_| None).unwrap();
        assert_eq!(config.egress_policy().unwrap().as_str(), "none");
        std::fs::write(
            &file,
            "[sandbox.egress]\nallow = [\"registry.npmjs.org\", \"*.example.com\"]\n",
        )
        .unwrap();
        let config = Config::load(Some(&file), &|_| None).unwrap();
        let policy = config.egress_policy().unwrap();
        assert_eq!(policy.as_str(), "proxy");
        assert_eq!(policy.allowed(), ["registry.npmjs.org", "*.example.com"]);
        let env = |k: &str| match k {
            "DRAFTSMITH_SANDBOX_EGRESS_ALLOW" => Some("a.example, b.example".to_owned()),
            _ => None,
        };
        let config = Config::load(Some(&file), &env).unwrap();
        assert_eq!(
            config.egress_policy().unwrap().allowed(),
            ["a.example", "b.example"]
        );
        let bad = |k: &str| (k == "DRAFTSMITH_SANDBOX_EGRESS").then(|| "open".to_owned());
        let err = Config::load(Some(&file), &bad).unwrap_err().to_string();
        assert!(err.contains("DRAFTSMITH_SANDBOX_EGRESS"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
