//! The engine's [`EventSink`] for one run: persist, then publish, and note when the first
//! answer token arrived.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use draftsmith_core::{Diagnostic, EventBody, RunEvent, RunId};
use draftsmith_engine::{EventSink, SinkClosed};
use draftsmith_store::{Store, StoreError};

use crate::bus::EventBus;

/// Persists and publishes a run's events.
pub struct RunSink {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    run: RunId,
    started: Instant,
    first_token_ms: Mutex<Option<u64>>,
}

impl RunSink {
    /// A sink for `run`, timing from `started`.
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        run: RunId,
        started: Instant,
    ) -> Self {
        Self {
            store,
            bus,
            run,
            started,
            first_token_ms: Mutex::new(None),
        }
    }

    /// Milliseconds from the run's start to its first answer token.
    pub fn first_token_ms(&self) -> Option<u64> {
        self.first_token_ms.lock().ok().and_then(|g| *g)
    }

    /// Persists then publishes one event.
    pub async fn record(
        &self,
        body: EventBody,
        diagnostics: Vec<Diagnostic>,
    ) -> Result<RunEvent, StoreError> {
        if matches!(body, EventBody::AssistantDelta { .. })
            && let Ok(mut first) = self.first_token_ms.lock()
        {
            first.get_or_insert(self.started.elapsed().as_millis() as u64);
        }
        let event = self.store.append_event(self.run, body, diagnostics).await?;
        self.bus.publish(&event).await;
        Ok(event)
    }
}

impl RunSink {
    /// Publishes events already persisted (by a landing), in order.
    pub async fn publish(&self, events: &[RunEvent]) {
        for event in events {
            self.bus.publish(event).await;
        }
    }
}

#[async_trait]
impl EventSink for RunSink {
    async fn emit(&self, body: EventBody, diagnostics: Vec<Diagnostic>) -> Result<(), SinkClosed> {
        self.record(body, diagnostics)
            .await
            .map(|_| ())
            .map_err(|e| SinkClosed(e.to_string()))
    }
}
