//! The engine phase: one turn of the run's engine on a job. Which engine does the work is
//! the run's [`EngineKind`](draftsmith_core::EngineKind); what it needs besides the job is
//! its own business behind the [`Engine`](draftsmith_engine::Engine) seam.

use std::sync::Arc;

use draftsmith_engine::{Engine, Finished, Job};

use super::error::RunError;
use super::execution::Execution;
use super::timings::RunTimings;
use crate::sink::RunSink;

impl Execution {
    /// The run's engine.
    pub(super) fn engine(&self) -> Result<&Arc<dyn Engine>, RunError> {
        let kind = self.task.run.engine;
        self.services
            .engines
            .get(kind)
            .ok_or(RunError::EngineUnavailable(kind))
    }

    /// Runs `job` on the run's engine, adding the engine's start-up time to the timings.
    pub(super) async fn run_engine(
        &self,
        job: Job,
        sink: &RunSink,
        timings: &mut RunTimings,
    ) -> Result<Finished, RunError> {
        let finished = self
            .engine()?
            .run(job, sink, self.stop.cancel.clone())
            .await;
        timings.add_engine_start(finished.ready_ms);
        Ok(finished)
    }
}
