//! [`OpencodeEngine`]: seeds the workspace, gets the workspace's `opencode serve` (reusing a
//! live one started with the same configuration, starting one otherwise) and runs the job
//! on it. Servers live in a pool shared by every clone of the engine, one per workspace,
//! until the sandbox stops them or the engine shuts down.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use draftsmith_core::{ErrorCode, EventError};
use draftsmith_engine::{Engine, EventSink, Finished, Job, Outcome, ResolvedModel};
use tokio_util::sync::CancellationToken;

use crate::binary::install_dir;
use crate::client::ModelRef;
use crate::config::{Launch, LaunchNetwork, OpencodeConfig, ServerPolicy};
use crate::gate::{ModelGate, PLACEHOLDER_KEY, Route};
use crate::run::{RunLimits, SESSION_TITLE, run_session};
use crate::seed::{seed_project, seed_workspace};
use crate::server::{OpencodeServer, ServerOptions};
use crate::settings::OpencodeSettings;
use crate::version::resolve_binary;

/// Timings of a workspace's latest run, for `timing_metrics_ms` (SPEC §4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTimings {
    /// Seeding plus getting a ready server (ms); near 0 when a warm server was reused.
    pub opencode_start: u64,
    /// Whether a running server was reused.
    pub server_reused: bool,
    /// From the prompt to the first answer text (ms).
    pub first_token: Option<u64>,
    /// Model calls made.
    pub steps: usize,
    /// The whole run (ms).
    pub total: u64,
    /// Whether the event stream was lost and the session polled.
    pub polled: bool,
    /// What ended the run (idle confirmed, cancel, retry bound, …), for diagnostics.
    pub ended_by: String,
    /// Whether the run's session was made ahead, after the server's previous run.
    pub session_ahead: bool,
}

/// A server in the pool with the configuration it was started with.
struct PooledServer {
    server: Arc<OpencodeServer>,
    settings: String,
    home: PathBuf,
    /// Its model-gate route, closed when the server goes.
    route: Option<String>,
    /// Whether a run has used it: a server started ahead of its first run counts as new
    /// for that run.
    used: bool,
}

type Slot = Arc<tokio::sync::Mutex<Option<PooledServer>>>;

#[derive(Default)]
struct Pool {
    slots: Mutex<HashMap<PathBuf, Slot>>,
    timings: Mutex<HashMap<PathBuf, RunTimings>>,
}

/// The OpenCode engine. Cheap to clone; clones share the server pool.
#[derive(Clone)]
pub struct OpencodeEngine {
    config: Arc<OpencodeConfig>,
    pool: Arc<Pool>,
    gate: Arc<tokio::sync::OnceCell<ModelGate>>,
}

impl OpencodeEngine {
    /// An engine with an empty pool.
    pub fn new(config: OpencodeConfig) -> Self {
        Self {
            config: Arc::new(config),
            pool: Arc::new(Pool::default()),
            gate: Arc::default(),
        }
    }

    /// The latest run's timings in `workspace`; runs in one workspace never overlap, so
    /// the runner reads it right after `run` returns.
    pub fn timings(&self, workspace: &Path) -> Option<RunTimings> {
        let key = key(workspace);
        self.pool.timings.lock().ok()?.get(&key).cloned()
    }

    /// The pid of the server serving `workspace`, if one runs (for tests and diagnostics).
    pub async fn server_pid(&self, workspace: &Path) -> Option<u32> {
        let slot = self.slot(&key(workspace))?;
        let guard = slot.lock().await;
        guard.as_ref().and_then(|p| p.server.pid())
    }

    /// How many times the server serving `workspace` opened its event connection (one for
    /// all its runs while it stays up), if one runs.
    pub async fn event_connections(&self, workspace: &Path) -> Option<u64> {
        let slot = self.slot(&key(workspace))?;
        let guard = slot.lock().await;
        guard.as_ref().map(|p| p.server.event_connections())
    }

    /// Stops the server of `workspace` (its sandbox is going away; call it before the
    /// workspace is deleted, as a symlinked path is only recognised while it resolves) and
    /// deletes its HOME.
    pub async fn stop_server(&self, workspace: &Path) {
        let key = key(workspace);
        let slot = self
            .pool
            .slots
            .lock()
            .ok()
            .and_then(|mut s| s.remove(&key).or_else(|| s.remove(workspace)));
        if let Some(slot) = slot
            && let Some(pooled) = slot.lock().await.take()
        {
            self.retire(&pooled).await;
            let _ = draftsmith_tools::beneath::remove_dir_all(&pooled.home);
        }
        if self.config.launch.is_none() && self.config.external.is_none() {
            // A start that failed left its HOME but no pooled server.
            let _ = draftsmith_tools::beneath::remove_dir_all(&self.home_for(&key));
        }
    }

    /// Stops every server (service shutdown).
    pub async fn shutdown(&self) {
        let keys: Vec<PathBuf> = self
            .pool
            .slots
            .lock()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        for key in keys {
            self.stop_server(&key).await;
        }
    }

    /// The gate's view of the provider of `workspace`'s server, reset for a new run.
    async fn upstream_health(&self, workspace: &Path) -> Option<crate::gate::Health> {
        let slot = self.slot(workspace)?;
        let token = slot.lock().await.as_ref()?.route.clone()?;
        let health = self.gate.get()?.health(&token)?;
        if let Ok(mut h) = health.lock() {
            *h = crate::gate::UpstreamHealth::default();
        }
        Some(health)
    }

    fn slot(&self, key: &Path) -> Option<Slot> {
        self.pool.slots.lock().ok()?.get(key).cloned()
    }

    fn slot_or_new(&self, key: &Path) -> Slot {
        match self.pool.slots.lock() {
            Ok(mut slots) => slots.entry(key.to_path_buf()).or_default().clone(),
            Err(_) => Slot::default(),
        }
    }

    /// The private HOME of a workspace: outside it, stable across restarts.
    fn home_for(&self, workspace: &Path) -> PathBuf {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        workspace.hash(&mut hasher);
        let name = workspace
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let root = self
            .config
            .homes_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("draftsmith-opencode-homes"));
        root.join(format!("{name}-{:016x}", hasher.finish()))
    }

    /// Stops a server and closes its model-gate route.
    async fn retire(&self, pooled: &PooledServer) {
        pooled.server.stop().await;
        if let (Some(token), Some(gate)) = (&pooled.route, self.gate.get()) {
            gate.close(token);
        }
    }

    /// The configuration a new server for `model` starts with: when the provider needs a
    /// key, its base URL is a fresh model-gate route and its key a placeholder, so the key
    /// never reaches OpenCode's environment.
    /// Across a network boundary (`network`), every model goes through the gate, as the
    /// server has no other way out: a route on the sandbox's own gate socket.
    async fn start_settings(
        &self,
        model: &ResolvedModel,
        network: Option<&LaunchNetwork>,
    ) -> Result<(String, Option<Route>), String> {
        let extra = &self.config.permission_overrides;
        let key = model.spec.api_key.as_deref().filter(|k| !k.is_empty());
        if key.is_none() && network.is_none() {
            return Ok((OpencodeSettings::for_model(model, extra).to_json(), None));
        }
        let gate = self
            .gate
            .get_or_try_init(ModelGate::start)
            .await
            .map_err(|e| format!("cannot start the model gate: {e}"))?;
        let route = match (network, key) {
            (Some(network), key) => gate
                .open_inside(
                    &network.gate,
                    &network.gate_url,
                    &model.spec.base_url,
                    key,
                    model.spec.kind,
                )
                .map_err(|e| format!("cannot open the sandbox's model-gate socket: {e}"))?,
            (None, Some(key)) => gate.open(&model.spec.base_url, key, model.spec.kind),
            (None, None) => unreachable_route()?,
        };
        let mut gated = model.clone();
        gated.spec.base_url = route.base_url.clone();
        gated.spec.api_key = Some(PLACEHOLDER_KEY.to_owned());
        Ok((
            OpencodeSettings::for_model(&gated, extra).to_json(),
            Some(route),
        ))
    }

    /// A ready server for `workspace` and whether it was reused. `settings` (with the real
    /// key) decides whether a running server fits; a new one starts gated. `for_run` is
    /// false for a start ahead of the run, while the workspace is still being filled: the
    /// run's own call then counts the server as new. The server's instance bootstraps for
    /// the workspace at the run's first request (its session), as raw OpenCode's does: a
    /// separate warm-up prompt only added its own session and prompt to a cold run.
    async fn server_for(
        &self,
        workspace: &Path,
        settings: String,
        resolved: &ResolvedModel,
        for_run: bool,
    ) -> Result<(Arc<OpencodeServer>, bool), String> {
        if let Some(external) = &self.config.external {
            let server =
                OpencodeServer::external(external.base_url.clone(), external.password.clone());
            let scoped = server.with_directory(workspace.display().to_string());
            return Ok((Arc::new(scoped), true));
        }
        let slot = self.slot_or_new(workspace);
        let mut guard = slot.lock().await;
        if let Some(pooled) = guard.as_mut() {
            let same = pooled.settings == settings;
            if same
                && pooled.server.is_alive()
                && self.config.server_policy == ServerPolicy::PerWorkspace
            {
                let reused = pooled.used;
                pooled.used |= for_run;
                return Ok((pooled.server.clone(), reused));
            }
            if !pooled.server.is_alive() {
                tracing::warn!(workspace = %workspace.display(), "OpenCode server died; starting a new one");
            }
            self.retire(pooled).await;
            *guard = None;
        }
        let binary = resolve_binary(self.config.binary.as_deref()).map_err(|e| e.to_string())?;
        let Launch {
            home,
            env,
            confinement,
            prepare,
            network,
        } = match &self.config.launch {
            Some(launch) => launch(workspace, &install_dir(&binary))
                .map_err(|e| format!("cannot place the OpenCode server in its sandbox: {e}"))?,
            None => Launch {
                home: self.home_for(workspace),
                ..Launch::default()
            },
        };
        let (config_json, route) = self.start_settings(resolved, network.as_ref()).await?;
        let close_route = || {
            if let (Some(route), Some(gate)) = (&route, self.gate.get()) {
                gate.close(&route.token);
            }
        };
        let options = ServerOptions {
            binary,
            workspace: workspace.to_path_buf(),
            home: home.clone(),
            env,
            config_json,
            confinement,
            prepare,
            start_timeout: self.config.start_timeout,
            password: None,
            network,
        };
        let server = match OpencodeServer::start(options).await {
            Ok(server) => Arc::new(server),
            Err(err) => {
                close_route();
                return Err(err.to_string());
            }
        };
        *guard = Some(PooledServer {
            server: server.clone(),
            settings,
            home,
            route: route.map(|r| r.token),
            used: for_run,
        });
        Ok((server, false))
    }

    /// The workspace's server started ahead of its run, with the project's files seeded and
    /// the run's session on its way; `None` (logged) when it cannot start.
    async fn ready_ahead(
        &self,
        workspace: &Path,
        model: &ResolvedModel,
    ) -> Option<Arc<OpencodeServer>> {
        if workspace.as_os_str().is_empty() || self.config.external.is_some() {
            return None;
        }
        let workspace = key(workspace);
        let settings =
            OpencodeSettings::for_model(model, &self.config.permission_overrides).to_json();
        let started = self.server_for(&workspace, settings, model, false).await;
        let ready = started.and_then(|(server, _)| {
            seed_project(&workspace).map_err(|e| e.to_string())?;
            Ok(server)
        });
        match ready {
            Ok(server) => {
                server.make_session_ahead(SESSION_TITLE);
                Some(server)
            }
            Err(error) => {
                tracing::debug!(%error, "starting the OpenCode server ahead of the run failed; the run tries again");
                None
            }
        }
    }

    async fn drive(
        &self,
        job: &Job,
        sink: &dyn EventSink,
        cancel: &CancellationToken,
    ) -> (Outcome, String, Option<u64>) {
        if job.workspace.as_os_str().is_empty() {
            let needs = "the opencode engine needs an in-process sandbox controller";
            return (start_failed(needs.into()), String::new(), None);
        }
        let clock = Instant::now();
        let workspace = key(&job.workspace);
        // Seeded as the JSON object the run's input parameters carry it as.
        let contract = serde_json::to_value(&job.contract).ok();
        if let Err(err) = seed_workspace(&workspace, contract.as_ref()) {
            return (start_failed(err.to_string()), String::new(), None);
        }
        let settings =
            OpencodeSettings::for_model(&job.model, &self.config.permission_overrides).to_json();
        let started = tokio::select! {
            _ = cancel.cancelled() => return (Outcome::Cancelled, String::new(), None),
            started = self.server_for(&workspace, settings, &job.model, true) => started,
        };
        let (server, reused) = match started {
            Ok(found) => found,
            Err(err) => return (start_failed(err), String::new(), None),
        };
        let opencode_start = clock.elapsed().as_millis() as u64;
        let limits = RunLimits {
            max_retry: self.config.max_retry,
            fail_on_unrecovered_edit: self.config.fail_on_unrecovered_edit,
            poll_interval: self.config.poll_interval,
            faults: self.config.faults.clone(),
            upstream: self.upstream_health(&workspace).await,
        };
        let (outcome, transcript, stats) =
            run_session(&server, job, workspace.clone(), &limits, sink, cancel).await;
        let timings = RunTimings {
            opencode_start,
            server_reused: reused,
            first_token: stats.first_token_ms,
            steps: stats.steps,
            total: clock.elapsed().as_millis() as u64,
            polled: stats.polled,
            ended_by: stats.ended_by,
            session_ahead: stats.session_ahead,
        };
        tracing::info!(workspace = %workspace.display(), ?timings, "opencode run finished");
        if let Ok(mut all) = self.pool.timings.lock() {
            all.insert(workspace.clone(), timings);
        }
        if self.config.server_policy == ServerPolicy::PerRun || !server.is_alive() {
            self.stop_server(&workspace).await;
        } else if self.config.external.is_none() {
            // The next run in this workspace finds its session made while the server idles.
            server.make_session_ahead(SESSION_TITLE);
        }
        (outcome, transcript, Some(opencode_start))
    }
}

#[async_trait]
impl Engine for OpencodeEngine {
    async fn run(&self, job: Job, sink: &dyn EventSink, cancel: CancellationToken) -> Finished {
        let (outcome, transcript, ready_ms) = self.drive(&job, sink, &cancel).await;
        Finished {
            outcome,
            transcript,
            ready_ms,
        }
    }

    /// Starts the workspace's server while its sandbox is filled, and the session its run
    /// takes (making it opens the server's instance on the workspace, as a run's first
    /// request would, so the project's files are seeded first).
    async fn prepare(&self, workspace: &Path, model: &ResolvedModel) {
        self.ready_ahead(workspace, model).await;
    }

    /// As `prepare`, then the server's warm-up ([`OpencodeServer::warm_up`]): OpenCode loads
    /// what its first prompt and step need without calling the model.
    async fn prepare_ahead(&self, workspace: &Path, model: &ResolvedModel) {
        if let Some(server) = self.ready_ahead(workspace, model).await
            && let Err(error) = server.warm_up(&ModelRef::of(model)).await
        {
            tracing::debug!(%error, "warming the OpenCode server up failed; its first run pays");
        }
    }

    async fn release(&self, workspace: &Path) {
        self.stop_server(workspace).await;
    }

    async fn shutdown(&self) {
        OpencodeEngine::shutdown(self).await;
    }

    /// Slots holding a server; one busy starting or stopping counts as running.
    fn servers(&self) -> usize {
        let Ok(slots) = self.pool.slots.lock() else {
            return 0;
        };
        slots
            .values()
            .filter(|slot| slot.try_lock().map_or(true, |s| s.is_some()))
            .count()
    }
}

/// The pool key: the workspace's canonical path (OpenCode reports canonical paths too).
fn key(workspace: &Path) -> PathBuf {
    workspace
        .canonicalize()
        .unwrap_or_else(|_| workspace.to_path_buf())
}

/// Neither a key nor a boundary: no route is needed (kept out of the match's happy path).
fn unreachable_route() -> Result<Route, String> {
    Err("internal: a model route without a key or a boundary".into())
}

fn start_failed(message: String) -> Outcome {
    Outcome::Failed {
        error: EventError {
            code: ErrorCode::CodingAgentOpencodeStartFailed,
            message,
            field: None,
            details: None,
        },
    }
}
