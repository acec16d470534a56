//! What `serve` does before it accepts requests: open the store, make sure an admin can
//! sign in, and start the runner with its event bus.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use draftsmith_contract::AgentContract;
use draftsmith_core::{EngineKind, InstanceId, Role, UserId};
use draftsmith_engine::{Engine, ModelRegistry};
use draftsmith_runner::{EnginePolicy, Engines, EventBus, LocalBus, PgBus, Runner, RunnerConfig};
use draftsmith_sandbox::{LocalController, RemoteController, SandboxController, SpareTemplate};
use draftsmith_store::{Backend, Principal, SqlStore, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError, DatabaseTarget, QueueAfterFailure};
use draftsmith_server::auth::hash_secret;
use draftsmith_server::routes::admin::mint_token;
use draftsmith_server::{AppState, Settings};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// Where.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The sandbox controller.
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// The PostgreSQL event listener.
    #[error("event bus: {0}")]
    Bus(sqlx::Error),
}

/// Opens the configured database, creating `data_dir` and the SQLite file when needed.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    create_data_dir(&config.data_dir)?;
    let store = match config.database_target() {
        DatabaseTarget::Sqlite(path) => SqlStore::open_sqlite(&path).await?,
        DatabaseTarget::Url(url) => SqlStore::connect(&url).await?,
    };
    Ok(Arc::new(store))
}

fn create_data_dir(dir: &Path) -> Result<(), StartError> {
    std::fs::create_dir_all(dir).map_err(|source| StartError::DataDir {
        path: dir.display().to_string(),
        source,
    })
}

/// This data directory's instance id, created on first use so a restart recognises the
/// runs it owned before.
pub fn instance_id(data_dir: &Path) -> Result<InstanceId, StartError> {
    create_data_dir(data_dir)?;
    let file = data_dir.join("instance-id");
    let io = |source| StartError::DataDir {
        path: file.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            if let Ok(id) = text.trim().parse() {
                return Ok(id);
            }
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(_) => {}
    }
    let id = InstanceId::new();
    std::fs::write(&file, id.to_string()).map_err(io)?;
    Ok(id)
}

/// Builds everything the routes need and starts the runner. `stop` ends background tasks.
pub async fn build_state(
    config: &Config,
    store: Arc<dyn Store>,
    registry: ModelRegistry,
    stop: CancellationToken,
) -> Result<AppState, StartError> {
    let instance = instance_id(&config.data_dir)?;
    let bus: Arc<dyn EventBus> = match (store.backend(), config.database_target()) {
        (Backend::Postgres, DatabaseTarget::Url(url)) => {
            PgBus::start(&url, store.clone(), instance, stop.clone())
                .await
                .map_err(StartError::Bus)?
        }
        _ => Arc::new(LocalBus::default()),
    };
    let (controller, local) = sandboxes(config, stop.clone())?;
    let (opencode, opencode_unavailable) = opencode_engine(config, local);
    let mut runner_config = runner_config(config, instance);
    runner_config.policy.opencode_unavailable = opencode_unavailable;
    let opencode = opencode.map(|engine| Arc::new(engine) as Arc<dyn Engine>);
    let engines = Engines::default().with(EngineKind::Opencode, opencode);
    let runner = Runner::start(
        store.clone(),
        bus,
        registry,
        controller,
        engines,
        runner_config,
    )
    .await?;
    Ok(AppState {
        store,
        settings: Arc::new(settings(config)),
        sites: Arc::new(draftsmith_server::sites::Sites::new(
            config.publish.cache_mib * 1024 * 1024,
        )),
        runner,
    })
}

/// What the routes are limited by, from `config`.
pub fn settings(c: &Config) -> Settings {
    Settings {
        max_file_bytes: c.max_file_bytes,
        max_json_bytes: c.max_json_bytes,
        http: c.http.clone(),
        uploads: c.uploads.clone(),
        apps_domain: Some(
            c.publish
                .apps_domain
                .trim()
                .trim_matches('.')
                .to_ascii_lowercase(),
        )
        .filter(|d| !d.is_empty()),
    }
}

/// The runner's settings from `config` (a reload builds them again: [`Runner::reconfigure`]
/// keeps what cannot change while running).
pub fn runner_config(config: &Config, instance: InstanceId) -> RunnerConfig {
    RunnerConfig {
        data_dir: config.data_dir.clone(),
        instance,
        policy: EnginePolicy {
            default_engine: config.default_engine(),
            native_enabled: config.coding_agent.native_enabled,
            opencode_unavailable: None,
        },
        max_steps: config.coding_agent.max_steps,
        max_compactions: config.coding_agent.max_compactions,
        lease: config.run_lease(),
        poll: Duration::from_millis(250),
        verify: config.coding_agent.verify,
        sandbox_ttl: config.sandbox_ttl(),
        repair_turns: config.coding_agent.repair_turns,
        budgets: draftsmith_runner::Budgets {
            run_max_cost: config.budgets.run_max_cost,
            run_max_cost_ceiling: config.budgets.run_max_cost_ceiling,
            run_max_tokens: config.budgets.run_max_tokens,
            run_max_tokens_ceiling: config.budgets.run_max_tokens_ceiling,
            user_daily_cost: config.budgets.user_daily_cost,
            user_monthly_cost: config.budgets.user_monthly_cost,
        },
        fair_use: draftsmith_runner::FairUse {
            user_active_runs: config.fair_use.user_active_runs,
            user_runs_per_minute: config.fair_use.user_runs_per_minute,
            instance_sandboxes: config.fair_use.instance_sandboxes,
        },
        hold_queue_after_failure: config.coding_agent.queue_after_failure
            == QueueAfterFailure::Hold,
        accounting: config.metrics.accounting,
        metrics: config.metrics.enabled,
        warm_chats: draftsmith_runner::WarmChats {
            per_template: config.opencode.warm_chats,
            templates: draftsmith_templates::all()
                .iter()
                .map(|t| t.id.to_owned())
                .collect(),
        },
    }
}

/// The in-process sandbox controller (bubblewrap when it works, the data directory hidden
/// from every sandbox), or a remote one when configured; expired sandboxes are reaped
/// every 30 s until `stop`.
pub fn sandbox_controller(
    config: &Config,
    stop: CancellationToken,
) -> Result<Arc<dyn SandboxController>, StartError> {
    Ok(sandboxes(config, stop)?.0)
}

/// The controller runs use, and the in-process one itself when it is local (the OpenCode
/// engine starts its servers inside its sandboxes).
type Sandboxes = (Arc<dyn SandboxController>, Option<Arc<LocalController>>);

/// What a new sandbox of each built-in template starts with: a new app's files and the
/// contract of an app with no agent selected.
fn spare_templates() -> Vec<SpareTemplate> {
    let contract = draftsmith_runner::contract::file_content(&AgentContract::empty());
    draftsmith_templates::all()
        .iter()
        .map(|template| SpareTemplate {
            id: template.id.to_owned(),
            files: draftsmith_server::routes::apps::new_app_files(template),
            contract: contract.clone(),
        })
        .collect()
}

/// The controller and, when local, the in-process one; reaped every 30 s until `stop`.
fn sandboxes(config: &Config, stop: CancellationToken) -> Result<Sandboxes, StartError> {
    let (controller, local): (Arc<dyn SandboxController>, _) =
        if config.sandbox.controller_url.trim().is_empty() {
            let local = LocalController::new(
                config.data_dir.join("sandboxes"),
                config.data_dir.join("cache"),
                config.sandbox.isolation,
            )
            .and_then(|local| local.with_identity(&config.sandbox.identity))
            .and_then(|local| local.with_limits(config.sandbox.limits.clone()))
            .map_err(|e| StartError::Sandbox(e.to_string()))?
            .with_hidden_path(config.data_dir.clone())
            .with_egress(config.egress_policy()?)
            .with_spares(config.sandbox.spares, spare_templates());
            tracing::info!(
                egress = local.egress_in_force(),
                allow = ?local.egress_allowed(),
                "sandbox network"
            );
            let local = Arc::new(local);
            (local.clone(), Some(local))
        } else {
            let remote = RemoteController::new(
                config.sandbox.controller_url.trim(),
                config.sandbox.controller_secret.clone(),
                reqwest::Client::new(),
            );
            (Arc::new(remote), None)
        };
    tracing::info!(isolation = controller.isolation().as_str(), "sandboxes");
    if let Some(report) = controller.limits() {
        tracing::info!(
            identity = %report.identity,
            processes = report.limits.processes,
            processes_by = report.processes.as_str(),
            memory_mib = report.limits.memory_mib,
            memory_by = report.memory.as_str(),
            cpu_shares = report.limits.cpu_shares,
            cpu_by = report.cpu.as_str(),
            disk_mib = report.limits.disk_mib,
            disk_by = report.disk.as_str(),
            open_files = report.limits.open_files,
            open_files_by = report.open_files.as_str(),
            "sandbox limits"
        );
    }
    draftsmith_sandbox::spawn_reaper(controller.clone(), Duration::from_secs(30), stop);
    Ok((controller, local))
}

/// The OpenCode engine when its binary is installed and of the supported major line, or
/// why it is not. With an in-process
/// controller each server is a service of its sandbox: confined like the sandbox's
/// commands, its HOME inside the sandbox's directory, gone with it.
fn opencode_engine(
    config: &Config,
    local: Option<Arc<LocalController>>,
) -> (Option<draftsmith_opencode::OpencodeEngine>, Option<String>) {
    let mut settings = opencode_settings(config);
    if settings.external.is_none()
        && let Err(unusable) = draftsmith_opencode::resolve_binary(settings.binary.as_deref())
    {
        tracing::warn!(%unusable, "the opencode engine is unavailable");
        return (None, Some(unusable.to_string()));
    }
    if settings.external.is_none() && draftsmith_sandbox::find_program("rg").is_none() {
        // OpenCode would download it from GitHub at the first search, which a sandbox
        // cannot reach: every `glob` and `grep` call would fail.
        tracing::warn!(
            "ripgrep (`rg`) is not on the PATH: the opencode engine's glob and grep tools \
             will fail; install it (Debian: ripgrep)"
        );
    }
    settings.homes_dir = Some(config.data_dir.join("opencode"));
    if let Some(local) = local {
        settings.launch = Some(Arc::new(move |workspace: &Path, install: &Path| {
            let launch = local
                .service_launch(workspace, "opencode", &[install.to_path_buf()])
                .map_err(|e| e.to_string())?;
            let enclosure = launch.enclosure;
            let prepare = draftsmith_opencode::CommandHook(Arc::new(move |command| {
                enclosure.admit_now(command).map_err(|e| e.to_string())
            }));
            Ok(draftsmith_opencode::Launch {
                home: launch.home,
                env: launch.env,
                confinement: launch.confinement,
                prepare: Some(prepare),
                network: launch.network.map(|n| draftsmith_opencode::LaunchNetwork {
                    socket: n.socket,
                    port: n.port,
                    gate: match n.gate {
                        draftsmith_sandbox::ServiceGate::Listener(listener) => {
                            draftsmith_opencode::GateEndpoint::Listener(listener)
                        }
                        draftsmith_sandbox::ServiceGate::Socket(path) => {
                            draftsmith_opencode::GateEndpoint::Socket(path)
                        }
                    },
                    gate_url: n.gate_url,
                }),
            })
        }));
    }
    (
        Some(draftsmith_opencode::OpencodeEngine::new(settings)),
        None,
    )
}

/// The engine's settings from `[opencode]`.
fn opencode_settings(config: &Config) -> draftsmith_opencode::OpencodeConfig {
    let section = &config.opencode;
    draftsmith_opencode::OpencodeConfig {
        binary: section.binary.clone(),
        start_timeout: section.start_timeout,
        max_retry: section.max_retry,
        fail_on_unrecovered_edit: section.fail_on_unrecovered_apply_patch,
        external: section
            .base_url
            .as_deref()
            .map(|url| draftsmith_opencode::ExternalServer {
                base_url: url.trim().to_owned(),
                password: section.password.clone(),
            }),
        ..draftsmith_opencode::OpencodeConfig::default()
    }
}

/// The user every bootstrap admin token acts as.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Registers `env_token` as an admin token; without one, creates an admin token when none
/// exists at all and returns it so the caller can print it once.
pub async fn bootstrap_admin(
    store: &dyn Store,
    env_token: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let admin = Principal {
        user_id: UserId(BOOTSTRAP_ADMIN.into()),
        role: Role::Admin,
    };
    if let Some(token) = env_token.map(str::trim).filter(|t| !t.is_empty()) {
        store
            .insert_token(&hash_secret(token), &admin, "DRAFTSMITH_ADMIN_TOKEN")
            .await?;
        return Ok(None);
    }
    if store.count_tokens().await? > 0 {
        return Ok(None);
    }
    let created = mint_token(store, &admin.user_id, Role::Admin, "first start")
        .await
        .map_err(|e| StoreError::Corrupt(format!("cannot mint the first token: {e:?}")))?;
    Ok(Some(created.token))
}
