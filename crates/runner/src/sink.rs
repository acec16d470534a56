//! The engine's [`EventSink`] for one run: persist, then publish, note when the first
//! answer token arrived, and account for each model call.
//!
//! Answer deltas are written behind the engine's back, in batches: the first one starts a
//! writer at once (so the first token is not delayed), and the deltas that arrive while it
//! writes go out together in its next transaction. Every other event waits for the writer,
//! then goes out in one transaction with the deltas still pending, so the log keeps the
//! order the engine emitted in and every delta keeps its own `seq` (resume stays exact).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use draftsmith_core::{Diagnostic, EventBody, RunEvent, RunId};
use draftsmith_engine::{EventSink, ModelCall, SinkClosed, Spending};
use draftsmith_store::{Store, StoreError};

use crate::accounting::Account;
use crate::bus::EventBus;

/// An event waiting to be written.
type Pending = (EventBody, Vec<Diagnostic>);

/// Persists and publishes a run's events.
pub struct RunSink {
    shared: Arc<Shared>,
    started: Instant,
    first_token_ms: Mutex<Option<u64>>,
    account: Account,
}

struct Shared {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    run: RunId,
    queue: Mutex<Queue>,
    /// Held while a batch is taken from the queue and written, so batches commit in the
    /// order they were taken.
    writer: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Queue {
    deltas: Vec<Pending>,
    /// A background writer is on the queue.
    writing: bool,
    /// Why a background write failed (the run ended); later emits report it.
    closed: Option<String>,
}

impl RunSink {
    /// A sink for the account's run, timing from `started`.
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        account: Account,
        started: Instant,
    ) -> Self {
        let shared = Shared {
            store,
            bus,
            run: account.run,
            queue: Mutex::new(Queue::default()),
            writer: tokio::sync::Mutex::new(()),
        };
        Self {
            shared: Arc::new(shared),
            started,
            first_token_ms: Mutex::new(None),
            account,
        }
    }

    /// Milliseconds from the run's start to its first answer token.
    pub fn first_token_ms(&self) -> Option<u64> {
        self.first_token_ms.lock().ok().and_then(|g| *g)
    }

    /// Persists then publishes one event, after the deltas emitted before it.
    pub async fn record(
        &self,
        body: EventBody,
        diagnostics: Vec<Diagnostic>,
    ) -> Result<RunEvent, StoreError> {
        let mut written = self.shared.write((body, diagnostics)).await?;
        written.pop().ok_or(StoreError::RunEnded)
    }

    /// Waits until every delta emitted so far is written and published.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.shared.write_pending().await.map(drop)
    }

    /// Publishes events already persisted (by a landing), in order.
    pub async fn publish(&self, events: &[RunEvent]) {
        for event in events {
            self.shared.bus.publish(event).await;
        }
    }

    /// Queues an answer delta and makes sure a writer is on its way.
    fn queue_delta(&self, delta: Pending) -> Result<(), SinkClosed> {
        if let Ok(mut first) = self.first_token_ms.lock() {
            first.get_or_insert(self.started.elapsed().as_millis() as u64);
        }
        let mut queue = self.shared.lock_queue();
        if let Some(reason) = &queue.closed {
            return Err(SinkClosed(reason.clone()));
        }
        queue.deltas.push(delta);
        if !queue.writing {
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

    /// Writes the pending deltas and then `event`, in one transaction.
    async fn write(&self, event: Pending) -> Result<Vec<RunEvent>, StoreError> {
        let _writer = self.writer.lock().await;
        let mut batch = std::mem::take(&mut self.lock_queue().deltas);
        batch.push(event);
        self.commit(batch).await
    }

    /// Writes whatever deltas are pending.
    async fn write_pending(&self) -> Result<Vec<RunEvent>, StoreError> {
        let _writer = self.writer.lock().await;
        let batch = std::mem::take(&mut self.lock_queue().deltas);
        self.commit(batch).await
    }

    /// The background writer: batch after batch until the queue is empty.
    async fn write_in_background(self: Arc<Self>) {
        loop {
            let _writer = self.writer.lock().await;
            let batch = {
                let mut queue = self.lock_queue();
                if queue.deltas.is_empty() {
                    queue.writing = false;
                    return;
                }
                std::mem::take(&mut queue.deltas)
            };
            if let Err(err) = self.commit(batch).await {
                let mut queue = self.lock_queue();
                queue.closed = Some(err.to_string());
                queue.deltas.clear();
                queue.writing = false;
                return;
            }
        }
    }

    async fn commit(&self, batch: Vec<Pending>) -> Result<Vec<RunEvent>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let written = self.store.append_events(self.run, batch).await?;
        for event in &written {
            self.bus.publish(event).await;
        }
        Ok(written)
    }
}

#[async_trait]
impl EventSink for RunSink {
    async fn emit(&self, body: EventBody, diagnostics: Vec<Diagnostic>) -> Result<(), SinkClosed> {
        if matches!(body, EventBody::AssistantDelta { .. }) {
            return self.queue_delta((body, diagnostics));
        }
        self.record(body, diagnostics)
            .await
            .map(|_| ())
            .map_err(|e| SinkClosed(e.to_string()))
    }

    async fn model_call(&self, call: ModelCall) -> Spending {
        self.account.record(self.shared.store.as_ref(), &call).await
    }
}
