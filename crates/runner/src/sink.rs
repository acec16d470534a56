//! The engine's [`EventSink`] for one run: persist, then publish, note when the first
//! answer token arrived, and account for each model call.
//!
//! The engine's events and model calls are written behind its back, in batches: the first
//! one starts a writer at once (so the first token is not delayed), and what arrives while
//! it writes goes out together in its next transaction, so the engine never waits for the
//! store and its writes overlap the model's next answer. The log keeps the order the engine
//! emitted in and every event keeps its own `seq` (resume stays exact). A write that fails
//! (the run ended elsewhere) closes the sink: the engine's next emit is refused. The
//! runner's own events ([`RunSink::record`]) wait for the queue, then go out with it.
//! While the sink is held ([`RunSink::hold`]: an engine working before its sandbox is
//! ready) what the engine emits waits in the queue, and [`RunSink::release`] puts
//! `sandbox.ready` ahead of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use draftsmith_core::{Diagnostic, EventBody, RunEvent, RunId, UsageTotals};
use draftsmith_engine::{EventSink, ModelCall, SinkClosed, Spending};
use draftsmith_store::{NewModelCall, Store, StoreError};

use crate::accounting::Account;
use crate::bus::EventBus;
use crate::metrics::{RunMetrics, StoreOp};

/// An event waiting to be written.
type Pending = (EventBody, Vec<Diagnostic>);

/// Persists and publishes a run's events.
pub struct RunSink {
    shared: Arc<Shared>,
    started: Instant,
    first_token_ms: Mutex<Option<u64>>,
    account: Account,
    /// The run's usage so far, kept here: the run is its only writer.
    totals: Mutex<UsageTotals>,
    /// Model turns so far (the highest step answered, plus one).
    steps: AtomicU64,
}

struct Shared {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    run: RunId,
    metrics: RunMetrics,
    queue: Mutex<Queue>,
    /// Held while a batch is taken from the queue and written, so batches commit in the
    /// order they were taken.
    writer: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Queue {
    events: Vec<Pending>,
    /// Model calls to record before `events`.
    calls: Vec<NewModelCall>,
    /// A background writer is on the queue.
    writing: bool,
    /// No background writer starts until the sink is released.
    held: bool,
    /// Why a background write failed (the run ended); later emits report it.
    closed: Option<String>,
}

impl Queue {
    /// Everything queued, for one transaction.
    fn take(&mut self) -> (Vec<NewModelCall>, Vec<Pending>) {
        (
            std::mem::take(&mut self.calls),
            std::mem::take(&mut self.events),
        )
    }
}

impl RunSink {
    /// A sink for the account's run, timing from `started`.
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        account: Account,
        metrics: RunMetrics,
        started: Instant,
    ) -> Self {
        let shared = Shared {
            store,
            bus,
            run: account.run,
            metrics,
            queue: Mutex::new(Queue::default()),
            writer: tokio::sync::Mutex::new(()),
        };
        Self {
            shared: Arc::new(shared),
            started,
            first_token_ms: Mutex::new(None),
            account,
            totals: Mutex::default(),
            steps: AtomicU64::new(0),
        }
    }

    /// Model turns the run has taken.
    pub fn steps(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }

    /// The run's metrics.
    pub fn metrics(&self) -> &RunMetrics {
        &self.shared.metrics
    }

    /// Milliseconds from the run's start to its first answer token.
    pub fn first_token_ms(&self) -> Option<u64> {
        self.first_token_ms.lock().ok().and_then(|g| *g)
    }

    /// Persists then publishes one event, after everything the engine emitted before it.
    pub async fn record(
        &self,
        body: EventBody,
        diagnostics: Vec<Diagnostic>,
    ) -> Result<RunEvent, StoreError> {
        let mut written = self.shared.write((body, diagnostics)).await?;
        written.pop().ok_or(StoreError::RunEnded)
    }

    /// Waits until everything the engine emitted so far is written and published.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.shared.write_pending().await.map(drop)
    }

    /// From now until [`RunSink::release`], what the engine emits waits unwritten.
    pub fn hold(&self) {
        self.shared.lock_queue().held = true;
    }

    /// Lets what the engine emitted while the sink was held go out, after `first`.
    pub fn release(&self, first: Option<EventBody>) -> Result<(), SinkClosed> {
        self.queue(|queue| {
            queue.held = false;
            if let Some(first) = first {
                queue.events.insert(0, (first, Vec::new()));
            }
        })
    }

    /// Publishes events already persisted (by a landing), in order.
    pub async fn publish(&self, events: &[RunEvent]) {
        self.shared.bus.publish_all(events).await;
    }

    /// Queues an event or a model call and makes sure a writer is on its way.
    fn queue(&self, add: impl FnOnce(&mut Queue)) -> Result<(), SinkClosed> {
        let mut queue = self.shared.lock_queue();
        if let Some(reason) = &queue.closed {
            return Err(SinkClosed(reason.clone()));
        }
        add(&mut queue);
        let waiting = !queue.events.is_empty() || !queue.calls.is_empty();
        if waiting && !queue.writing && !queue.held {
            queue.writing = true;
            tokio::spawn(self.shared.clone().write_in_background());
        }
        Ok(())
    }
}

impl Shared {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes what is queued and then `event`, in one transaction.
    async fn write(&self, event: Pending) -> Result<Vec<RunEvent>, StoreError> {
        let _writer = self.writer.lock().await;
        let (calls, mut batch) = self.lock_queue().take();
        batch.push(event);
        self.commit(calls, batch).await
    }

    /// Writes whatever is queued.
    async fn write_pending(&self) -> Result<Vec<RunEvent>, StoreError> {
        let _writer = self.writer.lock().await;
        let (calls, batch) = self.lock_queue().take();
        self.commit(calls, batch).await
    }

    /// The background writer: batch after batch until the queue is empty.
    async fn write_in_background(self: Arc<Self>) {
        loop {
            let _writer = self.writer.lock().await;
            let (calls, batch) = {
                let mut queue = self.lock_queue();
                if queue.events.is_empty() && queue.calls.is_empty() {
                    queue.writing = false;
                    return;
                }
                queue.take()
            };
            if let Err(err) = self.commit(calls, batch).await {
                let mut queue = self.lock_queue();
                queue.closed = Some(err.to_string());
                queue.events.clear();
                queue.calls.clear();
                queue.writing = false;
                return;
            }
        }
    }

    async fn commit(
        &self,
        calls: Vec<NewModelCall>,
        batch: Vec<Pending>,
    ) -> Result<Vec<RunEvent>, StoreError> {
        if batch.is_empty() && calls.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let written = self.store.append_events(self.run, calls, batch).await;
        self.metrics
            .store_op(StoreOp::AppendEvents, started.elapsed());
        let written = written?;
        self.bus.publish_all(&written).await;
        Ok(written)
    }
}

#[async_trait]
impl EventSink for RunSink {
    async fn emit(&self, body: EventBody, diagnostics: Vec<Diagnostic>) -> Result<(), SinkClosed> {
        if matches!(body, EventBody::AssistantDelta { .. })
            && let Ok(mut first) = self.first_token_ms.lock()
        {
            first.get_or_insert(self.started.elapsed().as_millis() as u64);
        }
        self.queue(|queue| queue.events.push((body, diagnostics)))
    }

    async fn model_call(&self, call: ModelCall) -> Spending {
        self.steps
            .fetch_max(call.step as u64 + 1, Ordering::Relaxed);
        if !self.account.enabled {
            // Accounting off: the metrics count the call as priced; nothing is stored.
            let record = self.account.price(&call, draftsmith_core::Timestamp::now());
            self.shared
                .metrics
                .model_call(call.ms, &record.usage, record.cost_micro_usd);
            return Spending::Within;
        }
        let (record, spending) = {
            let mut totals = self.totals.lock().unwrap_or_else(|e| e.into_inner());
            self.account.charge(&mut totals, &call)
        };
        self.shared
            .metrics
            .model_call(call.ms, &record.usage, record.cost_micro_usd);
        // A closed sink ends the run at the engine's next emit; the call goes with it.
        let _ = self.queue(|queue| queue.calls.push(record));
        spending
    }
}
