//! One run from `run.started` to its terminal event, as phases with one owner each:
//! [`prepare`] (the sandbox, the history, the job), [`engine`] (one engine turn),
//! [`repair`] (verification and the repair turns), [`land`] (the work into the draft, or
//! kept as `rejected`) and [`finish`] (the sandbox released, the message, the timings and
//! the terminal event). Failures are [`RunError`]s, turned into wire codes in one place.

mod engine;
mod error;
mod finish;
mod land;
mod prepare;
mod repair;
mod timings;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use draftsmith_contract::AgentContract;
use draftsmith_core::api::{App, Run};
use draftsmith_engine::ResolvedModel;
use draftsmith_sandbox::SandboxId;
use draftsmith_store::Store;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::RunnerConfig;
use crate::bus::EventBus;
use crate::engines::Engines;
use crate::sink::RunSink;

pub(crate) use error::{Ending, RunError};
pub(crate) use finish::stop_sandbox;
pub use land::CRASH_AFTER_LANDING;
use land::Pending;
use timings::RunTimings;

/// What every run of a runner shares.
#[derive(Clone)]
pub(crate) struct Services {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub controller: Arc<dyn draftsmith_sandbox::SandboxController>,
    pub engines: Engines,
}

/// How a run is stopped, and by whom.
#[derive(Clone, Default)]
pub(crate) struct Stop {
    pub cancel: CancellationToken,
    pub by: Arc<Mutex<Option<String>>>,
}

/// What the run was given when it was created.
pub(crate) struct Assignment {
    pub run: Run,
    pub app: App,
    pub model: ResolvedModel,
    /// The app's selected-agent contract, as loaded when the run was created.
    pub contract: AgentContract,
}

/// When the run started, how long creating it took, and the API's own timing to come.
pub(crate) struct Clock {
    pub started: Instant,
    pub create_ms: u64,
    pub api_ms: oneshot::Receiver<u64>,
}

/// Everything one run's task owns.
pub(crate) struct Execution {
    services: Services,
    task: Assignment,
    /// The chat's sandbox, derived once from the run's chat session.
    sandbox: SandboxId,
    config: RunnerConfig,
    stop: Stop,
    clock: Clock,
}

/// What the work phases leave for the ending: how it ends, the assistant's text, and the
/// work to land when there is any.
struct Worked {
    ending: Ending,
    transcript: String,
    pending: Option<Pending>,
}

impl Worked {
    fn ended(ending: impl Into<Ending>, transcript: String) -> Self {
        Self {
            ending: ending.into(),
            transcript,
            pending: None,
        }
    }
}

impl Execution {
    pub(crate) fn new(
        services: Services,
        task: Assignment,
        config: RunnerConfig,
        stop: Stop,
        clock: Clock,
    ) -> Self {
        let sandbox = SandboxId::for_chat(task.run.chat_session_id);
        Self {
            services,
            task,
            sandbox,
            config,
            stop,
            clock,
        }
    }

    /// Runs every phase, then ends the run: a landing when there is work to sync, the
    /// terminal event on its own otherwise (or when the landing failed).
    pub(crate) async fn execute(mut self) {
        let sink = RunSink::new(
            self.services.store.clone(),
            self.services.bus.clone(),
            self.task.run.run_id,
            self.clock.started,
        );
        let mut timings = RunTimings::new(self.clock.create_ms);
        let Worked {
            mut ending,
            transcript,
            pending,
        } = self.work(&sink, &mut timings).await;
        if let Some(pending) = pending {
            // Kept warm first: once the landing commits, the run has ended.
            self.release_sandbox(&ending).await;
            self.close_timings(&sink, &mut timings);
            match self
                .land(&sink, pending, &ending, &transcript, &timings)
                .await
            {
                Ok(()) => return self.log_timings(&ending, &timings),
                Err(failed) => ending = failed,
            }
        }
        self.release_sandbox(&ending).await;
        self.close_timings(&sink, &mut timings);
        self.finish(&sink, ending, transcript, timings).await;
    }

    /// Prepare, run the engine, verify and repair, and snapshot what is to land.
    async fn work(&self, sink: &RunSink, timings: &mut RunTimings) -> Worked {
        let prepared = match self.prepare(sink, timings).await {
            Ok(prepared) => prepared,
            Err(ending) => return Worked::ended(ending, String::new()),
        };
        let finished = match self.run_engine(prepared.job.clone(), sink, timings).await {
            Ok(finished) => finished,
            Err(error) => return Worked::ended(error, String::new()),
        };
        let (outcome, transcript) = match self
            .verify_and_repair(&prepared, finished, sink, timings)
            .await
        {
            (Ok(outcome), transcript) => (outcome, transcript),
            (Err(ending), transcript) => return Worked::ended(ending, transcript),
        };
        self.settle(prepared.manifest, outcome, transcript).await
    }

    /// The ending of a run stopped by its cancel token: cancelled by a person, or failed
    /// as an orphan when the service is shutting down.
    pub(crate) fn cancelled(&self) -> Ending {
        match self.stop.by.lock().ok().and_then(|b| b.clone()) {
            Some(by) => Ending::Cancelled { by },
            None => Ending::Failed(RunError::Orphaned),
        }
    }
}
