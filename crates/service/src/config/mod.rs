//! Configuration (SPEC §8): one TOML file whose sections are typed ([`sections`]), every
//! key overridable by an environment variable from one table ([`env::OVERRIDES`]): the
//! SPEC's names (`DATABASE_URL`, the `APPS_…` variables) and `DRAFTSMITH_<KEY>` for the
//! rest. A bad value in either stops the start with an error naming where it came from.

mod env;
mod registry;
mod sections;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use draftsmith_engine::ProviderKind;
pub use draftsmith_server::edge::HttpConfig;
pub use draftsmith_server::routes::uploads::UploadsConfig;
pub use env::{OVERRIDES, Override};
pub use sections::{
    BudgetsConfig, CodingAgentConfig, EgressConfig, EgressMode, FairUseConfig, MetricsConfig,
    ModelsConfig, OpencodeSection, ProviderConfig, PublishConfig, QueueAfterFailure, SandboxConfig,
};

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
    /// An admin token registered at every start (usually from the environment).
    pub admin_token: Option<String>,
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
    /// The OpenCode engine's servers.
    pub opencode: OpencodeSection,
    /// Limits of the HTTP edge.
    pub http: HttpConfig,
    /// How published apps are served.
    pub publish: PublishConfig,
    /// Spending limits per run and per user.
    pub budgets: BudgetsConfig,
    /// Fair-use limits per user and per instance.
    pub fair_use: FairUseConfig,
    /// Prometheus metrics and accounting switches.
    pub metrics: MetricsConfig,
    /// Files attached to prompts: size and type limits.
    pub uploads: UploadsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8787".into(),
            data_dir: PathBuf::from(".draftsmith"),
            database_url: String::new(),
            admin_token: None,
            max_file_bytes: 5 * 1024 * 1024,
            max_json_bytes: 1024 * 1024,
            models: ModelsConfig::default(),
            providers: Vec::new(),
            coding_agent: CodingAgentConfig::default(),
            sandbox: SandboxConfig::default(),
            opencode: OpencodeSection::default(),
            http: HttpConfig::default(),
            publish: PublishConfig::default(),
            budgets: BudgetsConfig::default(),
            fair_use: FairUseConfig::default(),
            metrics: MetricsConfig::default(),
            uploads: UploadsConfig::default(),
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
    /// Reads `path` (when given, or `./draftsmith.toml` when present), then applies the
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
        env::apply(&mut config, env)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.sandbox.identity.check().map_err(|e| ConfigError::Env {
            var: "DRAFTSMITH_SANDBOX_UID_BASE",
            message: e.to_string(),
        })
    }

    /// What sandboxes may reach: the configured allow-list, or by default the host of the
    /// registry the host's npm uses; with the proxy, sandboxed npm is pointed at that
    /// registry (npm is asked once, here).
    pub fn egress_policy(&self) -> Result<draftsmith_sandbox::EgressPolicy, ConfigError> {
        let egress = &self.sandbox.egress;
        let registry = match egress.mode {
            EgressMode::Proxy => Some(draftsmith_sandbox::NpmRegistry::of_host_npm()),
            EgressMode::None => None,
        };
        let allow = match (&egress.allow, &registry) {
            (Some(allow), _) => allow.clone(),
            (None, Some(registry)) => vec![registry.host().to_owned()],
            (None, None) => Vec::new(),
        };
        let policy =
            draftsmith_sandbox::EgressPolicy::parse(egress.mode.as_str(), allow).map_err(|e| {
                ConfigError::Env {
                    var: "DRAFTSMITH_SANDBOX_EGRESS",
                    message: e.to_string(),
                }
            })?;
        Ok(match registry {
            Some(registry) => policy.with_npm_registry(registry),
            None => policy,
        })
    }

    /// The default engine: as configured, else `opencode`.
    pub fn default_engine(&self) -> draftsmith_core::EngineKind {
        self.coding_agent
            .default_engine
            .unwrap_or(draftsmith_core::EngineKind::Opencode)
    }

    /// The lease on an executing run (at least 0.5 s).
    pub fn run_lease(&self) -> Duration {
        self.coding_agent.run_lease.max(Duration::from_millis(500))
    }

    /// How long an idle sandbox stays warm (at least 1 s).
    pub fn sandbox_ttl(&self) -> Duration {
        self.sandbox.ttl.max(Duration::from_secs(1))
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

#[cfg(test)]
mod tests;
