//! This instance's Prometheus metrics: one recorder per runner (not the process-global
//! one, so two services in one process count apart), rendered in the text format by
//! `GET /metrics`. A run registers its series once when it starts (its model's and its
//! engine's handles), so recording a step is an atomic add, no lookup or allocation;
//! gauges that mirror state (warm sandboxes, OpenCode servers, the queue) are read when
//! scraped. [`Metrics::off`] records nothing (`[metrics] enabled = false`).

use std::sync::Arc;
use std::time::Duration;

use draftsmith_core::{EngineKind, Usage};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

const META: Metadata<'static> = Metadata::new("draftsmith", metrics::Level::INFO, None);

/// Histogram buckets in seconds (model calls, store operations, runs).
const SECONDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

/// The series: name, kind, unit, help.
const RUNS: &str = "draftsmith_runs_total";
const RUN_DURATION: &str = "draftsmith_run_duration_seconds";
const FIRST_TOKEN: &str = "draftsmith_run_first_token_seconds";
const STEPS: &str = "draftsmith_run_steps";
const CALL_DURATION: &str = "draftsmith_model_call_duration_seconds";
const CALLS: &str = "draftsmith_model_calls_total";
const CALL_ERRORS: &str = "draftsmith_model_call_errors_total";
const TOKENS: &str = "draftsmith_model_tokens_total";
const COST: &str = "draftsmith_model_cost_microdollars_total";
const ACTIVE_RUNS: &str = "draftsmith_active_runs";
const WARM_SANDBOXES: &str = "draftsmith_warm_sandboxes";
const OPENCODE_SERVERS: &str = "draftsmith_opencode_servers";
const CHATS_MADE_AHEAD: &str = "draftsmith_chats_made_ahead";
const QUEUE_DEPTH: &str = "draftsmith_queue_depth";
const SSE_FOLLOWERS: &str = "draftsmith_sse_followers";
const STORE: &str = "draftsmith_store_operation_duration_seconds";

/// What each series means, for `# HELP`.
const DESCRIPTIONS: &[(&str, Option<Unit>, &str)] = &[
    (
        RUNS,
        None,
        "Runs ended on this instance, by engine and terminal status.",
    ),
    (
        RUN_DURATION,
        Some(Unit::Seconds),
        "A run's whole duration, by engine.",
    ),
    (
        FIRST_TOKEN,
        Some(Unit::Seconds),
        "From a run's start to its first answer token, by engine.",
    ),
    (STEPS, None, "Model turns per ended run, by engine."),
    (
        CALL_DURATION,
        Some(Unit::Seconds),
        "A model call's wall time, by provider.",
    ),
    (CALLS, None, "Model calls, by provider."),
    (
        CALL_ERRORS,
        None,
        "Runs ended by a model provider's error, by provider.",
    ),
    (TOKENS, None, "Tokens of model calls, by model and kind."),
    (
        COST,
        None,
        "Cost of model calls in micro-dollars, by model.",
    ),
    (ACTIVE_RUNS, None, "Runs executing on this instance."),
    (
        WARM_SANDBOXES,
        None,
        "Sandboxes this instance keeps (working or warm).",
    ),
    (
        OPENCODE_SERVERS,
        None,
        "OpenCode servers running on this instance.",
    ),
    (
        CHATS_MADE_AHEAD,
        None,
        "New chats ready with their sandbox and OpenCode server ([opencode] warm_chats).",
    ),
    (QUEUE_DEPTH, None, "Prompts waiting in the apps' queues."),
    (SSE_FOLLOWERS, None, "Open run event streams."),
    (
        STORE,
        Some(Unit::Seconds),
        "Store operations on a run's hot path, by operation.",
    ),
];

/// This instance's metrics; cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Option<Arc<Registry>>,
}

struct Registry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    active_runs: Gauge,
    warm_sandboxes: Gauge,
    opencode_servers: Gauge,
    chats_made_ahead: Gauge,
    queue_depth: Gauge,
    sse_followers: Gauge,
    append_events: Histogram,
}

/// A store operation timed on a run's hot path.
#[derive(Debug, Clone, Copy)]
pub enum StoreOp {
    /// A batch of a run's events and model calls.
    AppendEvents,
}

/// What `/metrics` reads when scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// Sandboxes the controller keeps, when it can tell.
    pub warm_sandboxes: Option<usize>,
    /// OpenCode servers running.
    pub opencode_servers: usize,
    /// New chats made ahead and ready.
    pub chats_made_ahead: usize,
    /// Prompts queued across apps.
    pub queue_depth: u64,
    /// Runs executing here.
    pub active_runs: usize,
}

impl Metrics {
    /// Metrics that are recorded and rendered.
    pub fn new() -> Self {
        let recorder = match PrometheusBuilder::new().set_buckets(SECONDS) {
            Ok(builder) => builder.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        for (name, unit, help) in DESCRIPTIONS {
            let key = KeyName::from_const_str(name);
            if name.ends_with("_total") {
                recorder.describe_counter(key, *unit, (*help).into());
            } else if matches!(
                *name,
                ACTIVE_RUNS
                    | WARM_SANDBOXES
                    | OPENCODE_SERVERS
                    | CHATS_MADE_AHEAD
                    | QUEUE_DEPTH
                    | SSE_FOLLOWERS
            ) {
                recorder.describe_gauge(key, *unit, (*help).into());
            } else {
                recorder.describe_histogram(key, *unit, (*help).into());
            }
        }
        let gauge =
            |name: &'static str| recorder.register_gauge(&Key::from_static_name(name), &META);
        let store = |op: &'static str| {
            recorder.register_histogram(&Key::from_parts(STORE, vec![Label::new("op", op)]), &META)
        };
        let registry = Registry {
            active_runs: gauge(ACTIVE_RUNS),
            warm_sandboxes: gauge(WARM_SANDBOXES),
            opencode_servers: gauge(OPENCODE_SERVERS),
            chats_made_ahead: gauge(CHATS_MADE_AHEAD),
            queue_depth: gauge(QUEUE_DEPTH),
            sse_followers: gauge(SSE_FOLLOWERS),
            append_events: store("append_events"),
            handle: recorder.handle(),
            recorder,
        };
        Self {
            inner: Some(Arc::new(registry)),
        }
    }

    /// Metrics that record nothing and render nothing.
    pub fn off() -> Self {
        Self { inner: None }
    }

    /// Whether anything is recorded.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The text exposition with the scraped gauges set from `now`; `None` when off.
    pub fn render(&self, now: Snapshot) -> Option<String> {
        let registry = self.inner.as_ref()?;
        if let Some(warm) = now.warm_sandboxes {
            registry.warm_sandboxes.set(warm as f64);
        }
        registry.opencode_servers.set(now.opencode_servers as f64);
        registry.chats_made_ahead.set(now.chats_made_ahead as f64);
        registry.queue_depth.set(now.queue_depth as f64);
        registry.active_runs.set(now.active_runs as f64);
        registry.handle.run_upkeep();
        Some(registry.handle.render())
    }

    /// One more open event stream until the guard drops.
    pub fn follower(&self) -> FollowerGuard {
        let gauge = self
            .inner
            .as_ref()
            .map_or_else(Gauge::noop, |r| r.sse_followers.clone());
        gauge.increment(1.0);
        FollowerGuard(gauge)
    }

    /// Times a store operation.
    pub fn store_op(&self, op: StoreOp, took: Duration) {
        if let Some(registry) = &self.inner {
            registry.store_op(op, took);
        }
    }

    /// The handles one run records into, registered once: its engine's and its model's.
    pub fn for_run(&self, engine: EngineKind, model: &str) -> RunMetrics {
        let Some(registry) = &self.inner else {
            return RunMetrics::default();
        };
        let r = &registry.recorder;
        let provider = model.split_once('/').map_or(model, |(p, _)| p).to_owned();
        let engine_label = || vec![Label::new("engine", engine.as_str())];
        let provider_label = || vec![Label::new("provider", provider.clone())];
        let model_label = |kind: Option<&'static str>| {
            let mut labels = vec![Label::new("model", model.to_owned())];
            if let Some(kind) = kind {
                labels.push(Label::new("kind", kind));
            }
            labels
        };
        let counter =
            |name: &'static str, labels| r.register_counter(&Key::from_parts(name, labels), &META);
        let histogram = |name: &'static str, labels| {
            r.register_histogram(&Key::from_parts(name, labels), &META)
        };
        RunMetrics {
            engine,
            registry: Some(registry.clone()),
            duration: histogram(RUN_DURATION, engine_label()),
            first_token: histogram(FIRST_TOKEN, engine_label()),
            steps: histogram(STEPS, engine_label()),
            call_duration: histogram(CALL_DURATION, provider_label()),
            calls: counter(CALLS, provider_label()),
            call_errors: counter(CALL_ERRORS, provider_label()),
            tokens: [
                counter(TOKENS, model_label(Some("input"))),
                counter(TOKENS, model_label(Some("output"))),
                counter(TOKENS, model_label(Some("cache_read"))),
                counter(TOKENS, model_label(Some("cache_write"))),
                counter(TOKENS, model_label(Some("reasoning"))),
            ],
            cost: counter(COST, model_label(None)),
        }
    }
}

impl Registry {
    fn store_op(&self, op: StoreOp, took: Duration) {
        let histogram = match op {
            StoreOp::AppendEvents => &self.append_events,
        };
        histogram.record(took.as_secs_f64());
    }
}

/// Keeps `draftsmith_sse_followers` one higher while it lives.
pub struct FollowerGuard(Gauge);

impl Drop for FollowerGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// One run's series, registered when it started.
#[derive(Clone)]
pub struct RunMetrics {
    engine: EngineKind,
    registry: Option<Arc<Registry>>,
    duration: Histogram,
    first_token: Histogram,
    steps: Histogram,
    call_duration: Histogram,
    calls: Counter,
    call_errors: Counter,
    /// Input, output, cache read, cache write, reasoning.
    tokens: [Counter; 5],
    cost: Counter,
}

impl Default for RunMetrics {
    fn default() -> Self {
        Self {
            engine: EngineKind::Native,
            registry: None,
            duration: Histogram::noop(),
            first_token: Histogram::noop(),
            steps: Histogram::noop(),
            call_duration: Histogram::noop(),
            calls: Counter::noop(),
            call_errors: Counter::noop(),
            tokens: std::array::from_fn(|_| Counter::noop()),
            cost: Counter::noop(),
        }
    }
}

impl RunMetrics {
    /// Times a store operation of the run.
    pub fn store_op(&self, op: StoreOp, took: Duration) {
        if let Some(registry) = &self.registry {
            registry.store_op(op, took);
        }
    }

    /// One model call: its time, tokens and cost.
    pub fn model_call(&self, took_ms: u64, usage: &Usage, cost_micro_usd: u64) {
        self.calls.increment(1);
        self.call_duration.record(took_ms as f64 / 1000.0);
        let counts = [
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
        ];
        for (counter, n) in self.tokens.iter().zip(counts) {
            counter.increment(n);
        }
        self.cost.increment(cost_micro_usd);
    }

    /// The run ended with `status` (`completed`, `paused`, `cancelled`, `failed`) after
    /// `steps` model turns; `model_error` when its provider's error ended it.
    pub fn ended(
        &self,
        status: &'static str,
        total: Duration,
        first_token: Option<Duration>,
        steps: u64,
        model_error: bool,
    ) {
        let Some(registry) = &self.registry else {
            return;
        };
        let labels = vec![
            Label::new("engine", self.engine.as_str()),
            Label::new("status", status),
        ];
        registry
            .recorder
            .register_counter(&Key::from_parts(RUNS, labels), &META)
            .increment(1);
        self.duration.record(total.as_secs_f64());
        if let Some(first) = first_token {
            self.first_token.record(first.as_secs_f64());
        }
        self.steps.record(steps as f64);
        if model_error {
            self.call_errors.increment(1);
        }
    }
}
