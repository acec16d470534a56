//! The ending: the sandbox released (a failed run's stopped, with whatever its engines
//! keep running in it; any other kept warm), the timings closed, the assistant's message,
//! the timings and the terminal event recorded, and one `CODING_AGENT_TIMING` log line.

use draftsmith_core::api::ChatRole;
use draftsmith_sandbox::{SandboxError, SandboxId};
use serde_json::Value;

use super::error::Ending;
use super::execution::{Execution, Services};
use super::timings::RunTimings;
use crate::sink::RunSink;

/// Stops a sandbox and, first, whatever the engines keep running in it (while its
/// workspace still resolves).
pub(crate) async fn stop_sandbox(services: &Services, id: &SandboxId) -> Result<(), SandboxError> {
    if let Some(workspace) = services.controller.workspace_dir(id) {
        services.engines.release(&workspace).await;
    }
    services.controller.stop(id).await
}

impl Execution {
    /// SPEC §6: a failed run stops its sandbox before the terminal event is sent; any
    /// other ending keeps it warm for another TTL.
    pub(super) async fn release_sandbox(&self, ending: &Ending) {
        let id = &self.sandbox;
        if ending.is_failure() {
            if let Err(err) = stop_sandbox(&self.services, id).await {
                tracing::warn!(sandbox = %id, error = %err, "could not stop a failed run's sandbox");
            }
        } else if let Err(err) = self
            .services
            .controller
            .touch(id, self.config.sandbox_ttl)
            .await
        {
            tracing::debug!(sandbox = %id, error = %err, "sandbox not kept warm");
        }
    }

    /// Adds the API's own timing, the first token and the total to the run's timings.
    pub(super) fn close_timings(&mut self, sink: &RunSink, timings: &mut RunTimings) {
        if let Ok(api) = self.clock.api_ms.try_recv() {
            timings.create_run_api = Some(api);
        }
        if let Some(first) = sink.first_token_ms() {
            timings.first_token = Some(first);
        }
        timings.total = Some(self.clock.started.elapsed().as_millis() as u64);
    }

    /// Records an ending that has nothing to land: the assistant's (partial) message, the
    /// timings, then the terminal event.
    pub(super) async fn finish(
        &self,
        sink: &RunSink,
        ending: Ending,
        transcript: String,
        timings: RunTimings,
    ) {
        let store = &self.services.store;
        let run = &self.task.run;
        if !transcript.is_empty() {
            let saved = store
                .add_chat_message(
                    run.chat_session_id,
                    Some(run.run_id),
                    ChatRole::Assistant,
                    &transcript,
                    ending.message(),
                )
                .await;
            if let Err(err) = saved {
                tracing::error!(run = %run.run_id, error = %err, "could not save the assistant message");
            }
        }
        if let Err(err) = store.set_run_timing(run.run_id, &timings.to_map()).await {
            tracing::error!(run = %run.run_id, error = %err, "could not save run timings");
        }
        if let Err(err) = sink.record(ending.body(), Vec::new()).await {
            tracing::warn!(run = %run.run_id, error = %err, "terminal event not recorded (the run had already ended)");
        }
        self.log_timings(sink, &ending, &timings);
    }

    /// Logs the `CODING_AGENT_TIMING` line and counts the ended run in the metrics.
    pub(super) fn log_timings(&self, sink: &RunSink, ending: &Ending, timings: &RunTimings) {
        let ms = |v: u64| std::time::Duration::from_millis(v);
        sink.metrics().ended(
            ending.status(),
            ms(timings.total.unwrap_or(0)),
            timings.first_token.map(ms),
            sink.steps(),
            ending.is_model_error(),
        );
        let timing_json = Value::Object(timings.to_map()).to_string();
        tracing::info!(
            target: "CODING_AGENT_TIMING",
            run_id = %self.task.run.run_id,
            app_id = %self.task.app.id,
            engine = self.task.run.engine.as_str(),
            model = %self.task.model.id,
            outcome = ending.body().event_type(),
            timing_metrics_ms = %timing_json,
            "CODING_AGENT_TIMING"
        );
    }
}
