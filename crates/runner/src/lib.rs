//! Drives runs from accepted to terminal. [`Runner::create`] validates engine and model
//! before anything is persisted, persists the run, and executes it in the background; a
//! maintenance loop renews this instance's leases, acts on cancel requests and hands on
//! steering messages made through any instance, and ends runs whose owner died.

mod accounting;
pub mod attachments;
pub mod budget;
pub mod bus;
pub mod config;
pub mod contract;
mod engines;
pub mod fair_use;
pub mod metrics;
pub mod policy;
pub mod preview;
pub mod publish;
mod queue;
mod run;
pub mod sandbox;
mod sink;
pub mod sync;
pub mod verify;
mod warm;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use draftsmith_core::RunEvent;
use draftsmith_core::api::{App, CreateRun, Run};
use draftsmith_core::{
    AppId, EngineKind, ErrorCode, EventBody, EventError, InstanceId, RunId, Timestamp, UserId,
};
use draftsmith_engine::{ModelRegistry, ResolvedModel, Steering, SteeringSender};
use draftsmith_store::{NewRun, Store, StoreError};
use run::{Execution, Services, Stop};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use budget::{BudgetError, Budgets, Clock};
pub use bus::{BusMessage, EventBus, LocalBus, PgBus};
pub use config::{RunnerConfig, WarmChats};
pub use engines::Engines;
pub use fair_use::{FairUse, Throttled};
pub use metrics::Metrics;
pub use policy::EnginePolicy;
pub use queue::Submitted;
pub use run::CRASH_AFTER_LANDING;

/// Why a run could not be created; nothing was persisted for any of these.
#[derive(Debug, thiserror::Error)]
pub enum CreateRunError {
    /// The engine is not allowed or not installed.
    #[error("{0}")]
    EngineUnavailable(String),
    /// The model is unknown or unavailable.
    #[error("{0}")]
    ModelUnavailable(String),
    /// A budget refused: the request's own, or the user's spent for the period.
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// A fair-use limit refused, for now.
    #[error(transparent)]
    Throttled(#[from] Throttled),
    /// The prompt's attachments were refused.
    #[error(transparent)]
    Attachment(#[from] attachments::AttachmentError),
    /// The store refused (including `RunActive` and `NotFound`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A run executing on this instance: how to stop it, and its engine's steering inbox.
struct Local {
    stop: Stop,
    steer: SteeringSender,
}

/// Owns every run this instance executes.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    services: Services,
    config: RwLock<Arc<RunnerConfig>>,
    registry: RwLock<Arc<ModelRegistry>>,
    /// The runs executing here, with how to stop and steer each.
    active: Mutex<HashMap<RunId, Local>>,
    stop: CancellationToken,
    tasks: TaskTracker,
    /// What budgets read the time from.
    clock: RwLock<Clock>,
    /// Apps whose queue may go on now (a run ended, a prompt was queued, a hold lifted);
    /// the maintenance loop starts their next prompt.
    kicks: mpsc::UnboundedSender<AppId>,
    kicked: Mutex<Option<mpsc::UnboundedReceiver<AppId>>>,
    /// New chats made ahead for OpenCode runs.
    warm: warm::WarmPool,
}

impl Runner {
    /// Ends the runs this instance owned before a restart, then starts the maintenance loop.
    pub async fn start(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        registry: ModelRegistry,
        controller: Arc<dyn draftsmith_sandbox::SandboxController>,
        engines: Engines,
        config: RunnerConfig,
    ) -> Result<Self, StoreError> {
        let (kicks, kicked) = mpsc::unbounded_channel();
        let runner = Self {
            inner: Arc::new(Inner {
                services: Services {
                    store,
                    bus,
                    controller,
                    engines,
                    metrics: if config.metrics {
                        Metrics::new()
                    } else {
                        Metrics::off()
                    },
                },
                registry: RwLock::new(Arc::new(registry)),
                active: Mutex::new(HashMap::new()),
                stop: CancellationToken::new(),
                tasks: TaskTracker::new(),
                config: RwLock::new(Arc::new(config)),
                clock: RwLock::new(budget::wall_clock()),
                kicks,
                kicked: Mutex::new(Some(kicked)),
                warm: warm::WarmPool::default(),
            }),
        };
        let previous = Some(runner.config().instance);
        runner.reap(previous).await?;
        let maintenance = runner.clone();
        runner
            .inner
            .tasks
            .spawn(async move { maintenance.maintain().await });
        Ok(runner)
    }

    /// The model registry in force.
    pub fn registry(&self) -> Arc<ModelRegistry> {
        match self.inner.registry.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Swaps the registry (a configuration reload); running runs keep their pinned model.
    pub fn replace_registry(&self, registry: ModelRegistry) {
        if let Ok(mut r) = self.inner.registry.write() {
            *r = Arc::new(registry);
        }
    }

    /// The settings in force.
    fn config(&self) -> Arc<RunnerConfig> {
        match self.inner.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A configuration reload: the registry and the reloadable settings (engine choice,
    /// steps, verification, repairs, sandbox TTL) apply to runs created from now on;
    /// where this instance lives, its lease and whether OpenCode is installed stay.
    pub fn reconfigure(&self, registry: ModelRegistry, next: RunnerConfig) {
        let current = self.config();
        let config = RunnerConfig {
            data_dir: current.data_dir.clone(),
            instance: current.instance,
            lease: current.lease,
            poll: current.poll,
            policy: EnginePolicy {
                opencode_unavailable: current.policy.opencode_unavailable.clone(),
                ..next.policy
            },
            ..next
        };
        if let Ok(mut c) = self.inner.config.write() {
            *c = Arc::new(config);
        }
        self.replace_registry(registry);
    }

    /// Replaces the clock budgets read (tests cross a period's end with it).
    pub fn set_clock(&self, clock: Clock) {
        if let Ok(mut c) = self.inner.clock.write() {
            *c = clock;
        }
    }

    fn clock(&self) -> Clock {
        match self.inner.clock.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The engine policy in force.
    pub fn policy(&self) -> EnginePolicy {
        self.config().policy.clone()
    }

    /// The sandbox controller runs work in.
    pub fn controller(&self) -> Arc<dyn draftsmith_sandbox::SandboxController> {
        self.inner.services.controller.clone()
    }

    /// This instance's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.services.metrics
    }

    /// The metrics in the Prometheus text format, the mirrored gauges read now; `None`
    /// when metrics are off.
    pub async fn render_metrics(&self) -> Result<Option<String>, StoreError> {
        let services = &self.inner.services;
        if !services.metrics.enabled() {
            return Ok(None);
        }
        let now = metrics::Snapshot {
            warm_sandboxes: services.controller.sandbox_count(),
            opencode_servers: services.engines.servers(),
            chats_made_ahead: self.inner.warm.count(),
            queue_depth: services.store.queue_depth().await?,
            active_runs: self.local_runs().len(),
        };
        Ok(services.metrics.render(now))
    }

    /// The event bus followers subscribe to.
    pub fn bus(&self) -> Arc<dyn EventBus> {
        self.inner.services.bus.clone()
    }

    /// Validates, persists and starts a run. The returned sender takes the API's own
    /// timing (`create_run_api`), which the run records when it ends.
    pub async fn create(
        &self,
        app: &App,
        user: &UserId,
        request: CreateRun,
    ) -> Result<(Run, oneshot::Sender<u64>), CreateRunError> {
        let clock = Instant::now();
        let (engine, requested, model) = self.choose(&request)?;
        let budgets = self.config().budgets;
        let budget = budgets.for_run(&request)?;
        let time = self.clock();
        let store = self.inner.services.store.as_ref();
        budgets.check_user(store, user, time()).await?;
        let working = self.inner.active.lock().map(|a| a.len()).unwrap_or(0);
        let fair_use = self.config().fair_use;
        fair_use.check(store, user, time(), working).await?;
        let attached = attachments::resolve(store, app, user, &request.attachments, &model).await?;
        let opening = request.chat_session_id.is_none().then(|| attached.clone());
        let contract = contract::load(store, app).await?;
        let lease_until = self.lease_deadline();
        // A new chat of the OpenCode engine starts on a chat made ahead, when one is ready.
        let warm = match (request.chat_session_id, engine) {
            (None, EngineKind::Opencode) => self.inner.warm.take(&app.template),
            _ => None,
        };
        let run = self
            .inner
            .services
            .store
            .create_run(NewRun {
                app: app.id,
                user: user.clone(),
                chat_session: request.chat_session_id,
                new_chat_id: warm,
                engine,
                requested_model_id: requested,
                resolved_model_id: model.id.clone(),
                input: request.input,
                owner: self.config().instance,
                lease_until,
                input_params: contract::input_params(&contract, &budget),
                attachments: attached,
                seen_revision: Some(app.draft_revision),
            })
            .await
            .inspect_err(|_| {
                if let Some(chat) = warm {
                    self.inner.warm.give_back(&app.template, chat);
                }
            })?;
        let task = run::Assignment {
            run: run.clone(),
            app: app.clone(),
            model,
            contract,
            budget,
            clock: self.clock(),
            opening,
        };
        let api_tx = self.launch(task, clock);
        Ok((run, api_tx))
    }

    /// The engine and the model a request asks for, as the policy and the registry
    /// resolve them (nothing is persisted when they refuse).
    fn choose(
        &self,
        request: &CreateRun,
    ) -> Result<(EngineKind, String, ResolvedModel), CreateRunError> {
        let engine = self
            .policy()
            .choose(request.engine)
            .map_err(CreateRunError::EngineUnavailable)?;
        let requested = request.model_id.clone().unwrap_or_else(|| "auto".into());
        let model = self
            .registry()
            .resolve(request.model_id.as_deref())
            .map_err(|e| CreateRunError::ModelUnavailable(e.0))?;
        Ok((engine, requested, model))
    }

    /// Executes a persisted run in a task of this instance; the returned sender takes the
    /// API's timing. When the run ends, the app's queue is asked to go on.
    fn launch(&self, task: run::Assignment, clock: Instant) -> oneshot::Sender<u64> {
        let (api_tx, api_ms) = oneshot::channel();
        let timing = run::Clock {
            started: clock,
            create_ms: clock.elapsed().as_millis() as u64,
            api_ms,
        };
        let stop = Stop {
            cancel: self.inner.stop.child_token(),
            by: Arc::default(),
        };
        let (steer, steering) = Steering::channel();
        if let Ok(mut active) = self.inner.active.lock() {
            let local = Local {
                stop: stop.clone(),
                steer,
            };
            active.insert(task.run.run_id, local);
        }
        let (run_id, app_id) = (task.run.run_id, task.app.id);
        let config = (*self.config()).clone();
        let services = self.inner.services.clone();
        let execution = Execution::new(services, task, config, stop, timing, steering);
        let runner = self.clone();
        self.inner.tasks.spawn(async move {
            execution.execute().await;
            if let Ok(mut active) = runner.inner.active.lock() {
                active.remove(&run_id);
            }
            runner.kick(app_id);
        });
        api_tx
    }

    /// Asks for a run to stop. It is recorded in the database so whichever instance
    /// executes the run acts on it; here, it acts at once.
    pub async fn cancel(&self, run: RunId, by: &UserId) -> Result<(), StoreError> {
        self.inner.services.store.request_cancel(run, by).await?;
        self.cancel_local(run, &by.0);
        Ok(())
    }

    fn cancel_local(&self, run: RunId, by: &str) {
        let Ok(active) = self.inner.active.lock() else {
            return;
        };
        if let Some(Local { stop, .. }) = active.get(&run) {
            if let Ok(mut who) = stop.by.lock() {
                who.get_or_insert_with(|| by.to_owned());
            }
            stop.cancel.cancel();
        }
    }

    /// Sends `text` to an active run: saved (chat message, `user.message` event, waiting
    /// for delivery) so whichever instance executes the run hands it to its engine; here,
    /// at once. [`StoreError::RunEnded`] once the run is terminal.
    pub async fn steer(&self, run: RunId, text: &str) -> Result<RunEvent, StoreError> {
        let services = &self.inner.services;
        let event = services.store.steer(run, text).await?;
        services.bus.publish(&event).await;
        if self.local_runs().contains(&run) {
            self.deliver_steering().await?;
        }
        Ok(event)
    }

    /// Claims the steering messages waiting for this instance's runs and hands each to its
    /// run's engine.
    async fn deliver_steering(&self) -> Result<(), StoreError> {
        let store = &self.inner.services.store;
        let claimed = store.claim_steering(self.config().instance).await?;
        let Ok(active) = self.inner.active.lock() else {
            return Ok(());
        };
        for steer in claimed {
            let delivered = active
                .get(&steer.run)
                .is_some_and(|local| local.steer.send(steer.text));
            if !delivered {
                // Its engine is done; the message stays in the chat for the next run.
                tracing::info!(run = %steer.run, seq = steer.seq, "steering message arrived after the engine ended");
            }
        }
        Ok(())
    }

    /// Stops the maintenance loop and every local run (they end `failed` with
    /// `CODING_AGENT_RUN_ORPHANED`), waiting up to `grace` for them to record it.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.stop.cancel();
        self.inner.tasks.close();
        let _ = tokio::time::timeout(grace, self.inner.tasks.wait()).await;
        self.inner.services.engines.shutdown().await;
    }

    /// Whether this instance works in as many sandboxes as `[fair_use]` allows.
    fn instance_full(&self) -> bool {
        let working = self.inner.active.lock().map(|a| a.len()).unwrap_or(0);
        self.config()
            .fair_use
            .instance_sandboxes
            .is_some_and(|limit| working as u64 >= limit)
    }

    fn lease_deadline(&self) -> Timestamp {
        let lease = self.config().lease.as_micros() as i64;
        Timestamp::from_micros(Timestamp::now().as_micros() + lease)
    }

    fn local_runs(&self) -> Vec<RunId> {
        self.inner
            .active
            .lock()
            .map(|a| a.keys().copied().collect())
            .unwrap_or_default()
    }

    async fn maintain(&self) {
        let mut last_renewal = Instant::now();
        let mut kicked = match self.inner.kicked.lock() {
            Ok(mut k) => k.take(),
            Err(_) => None,
        };
        let mut ticker = tokio::time::interval(self.config().poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let kick = async {
                match kicked.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                Some(app) = kick => {
                    self.start_queued_logged(app).await;
                    continue;
                }
                _ = ticker.tick() => {}
            }
            if let Err(err) = self.tick(&mut last_renewal).await {
                tracing::warn!(error = %err, "run maintenance failed; retrying");
            }
        }
    }

    async fn tick(&self, last_renewal: &mut Instant) -> Result<(), StoreError> {
        let store = &self.inner.services.store;
        // Cancel requests and steering messages that another instance took are for the
        // runs this one executes: with none, there is nothing to ask for. A run that is
        // claimed but not yet executing here gets both at the next tick.
        let executing = self.inner.active.lock().is_ok_and(|a| !a.is_empty());
        if executing {
            for (run, by) in store.runs_to_cancel(self.config().instance).await? {
                self.cancel_local(run, &by);
            }
            self.deliver_steering().await?;
        }
        if last_renewal.elapsed() >= self.config().lease / 3 {
            *last_renewal = Instant::now();
            store
                .renew_leases(
                    self.config().instance,
                    &self.local_runs(),
                    self.lease_deadline(),
                )
                .await?;
            self.reap(None).await?;
        }
        for app in store.apps_with_waiting_queue().await? {
            self.start_queued_logged(app).await;
        }
        self.keep_warm();
        Ok(())
    }

    /// Ends runs whose owner is gone: expired leases, and with `previous_life` every active
    /// run this instance owned before it restarted.
    async fn reap(&self, previous_life: Option<InstanceId>) -> Result<(), StoreError> {
        let local = self.local_runs();
        let orphans = self
            .inner
            .services
            .store
            .orphaned_runs(previous_life, Timestamp::now())
            .await?;
        for run in orphans.into_iter().filter(|r| !local.contains(r)) {
            // SPEC §6: a failed run stops its sandbox, before its terminal event.
            self.stop_sandbox(run).await;
            let body = EventBody::RunFailed {
                error: EventError {
                    code: ErrorCode::CodingAgentRunOrphaned,
                    message: "the instance executing this run stopped before it ended".into(),
                    field: None,
                    details: None,
                },
                usage: None,
            };
            let services = &self.inner.services;
            match services.store.append_event(run, body, Vec::new()).await {
                Ok(event) => {
                    tracing::warn!(run = %run, "ended an orphaned run");
                    services.bus.publish(&event).await;
                }
                Err(StoreError::RunEnded) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Stops the sandbox of a run that ended without its owner (what its engines keep
    /// running in it included), as a failed run's own ending would.
    async fn stop_sandbox(&self, run: RunId) {
        let chat = match self.inner.services.store.run(run).await {
            Ok(found) => found.chat_session_id,
            Err(err) => {
                tracing::warn!(run = %run, error = %err, "orphaned run not found to stop its sandbox");
                return;
            }
        };
        let id = draftsmith_sandbox::SandboxId::for_chat(chat);
        match run::stop_sandbox(&self.inner.services, &id).await {
            Ok(()) => {
                tracing::info!(run = %run, sandbox = %id, "stopped an orphaned run's sandbox")
            }
            Err(err) => {
                tracing::warn!(run = %run, sandbox = %id, error = %err, "could not stop an orphaned run's sandbox");
            }
        }
    }
}
