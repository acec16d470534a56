//! The engine phase: one turn of the run's engine on a job. Which engine does the work is
//! the run's [`EngineKind`](draftsmith_core::EngineKind); what it needs besides the job is
//! its own business behind the [`Engine`](draftsmith_engine::Engine) seam.

use draftsmith_engine::{Finished, Job};

use super::error::RunError;
use super::execution::Execution;
use super::timings::RunTimings;
use crate::sink::RunSink;

impl Execution {
    /// Runs `job` on the run's engine, adding the engine's start-up time to the timings.
    pub(super) async fn run_engine(
        &self,
        job: Job,
        sink: &RunSink,
        timings: &mut RunTimings,
    ) -> Result<Finished, RunError> {
        let kind = self.task.run.engine;
        let Some(engine) = self.services.engines.get(kind) else {
            return Err(RunError::EngineUnavailable(kind));
        };
        let finished = engine.run(job, sink, self.stop.cancel.clone()).await;
        timings.add_engine_start(finished.ready_ms);
        Ok(finished)
    }
}
