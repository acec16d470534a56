//! One run from `run.started` to its terminal event, as phases with one owner each:
//! [`prepare`] (the sandbox, the history, the job, and the engine's first turn, which may
//! start before the sandbox is ready), [`engine`] (one engine turn),
//! [`repair`] (verification and the repair turns), [`land`] (the work into the draft, or
//! kept as `rejected`) and [`finish`] (the sandbox released, the message, the timings and
//! the terminal event). Failures are [`error::RunError`]s, turned into wire codes in one place.

mod engine;
mod error;
mod execution;
mod finish;
mod land;
mod prepare;
mod repair;
mod timings;

pub(crate) use execution::{Assignment, Clock, Execution, Services, Stop};
pub(crate) use finish::stop_sandbox;
pub use land::CRASH_AFTER_LANDING;

use crate::accounting::Account;
use crate::sink::RunSink;
use land::Worked;
use timings::RunTimings;

impl Execution {
    /// Runs every phase, then ends the run: a landing when there is work to sync, the
    /// terminal event on its own otherwise (or when the landing failed).
    pub(crate) async fn execute(mut self) {
        let account = Account {
            run: self.task.run.run_id,
            app: self.task.app.id,
            user: self.task.run.created_by.clone(),
            prices: self.task.model.facts.prices,
            budget: self.task.budget,
            clock: self.task.clock.clone(),
            enabled: self.config.accounting,
        };
        let metrics = self
            .services
            .metrics
            .for_run(self.task.run.engine, &self.task.model.id);
        let sink = RunSink::new(
            self.services.store.clone(),
            self.services.bus.clone(),
            account,
            metrics,
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
            // The engine's last events were being written while the workspace's snapshot
            // was taken; the landing claims its seqs after them.
            if let Err(err) = sink.flush().await {
                tracing::debug!(error = %err, "the run ended while its answer was being written");
            }
            match self
                .land(&sink, pending, &ending, &transcript, &timings)
                .await
            {
                Ok(()) => return self.log_timings(&sink, &ending, &timings),
                Err(failed) => ending = failed,
            }
        }
        self.release_sandbox(&ending).await;
        self.close_timings(&sink, &mut timings);
        self.finish(&sink, ending, transcript, timings).await;
    }

    /// Prepare, run the engine, verify and repair, and snapshot what is to land.
    async fn work(&self, sink: &RunSink, timings: &mut RunTimings) -> Worked {
        let (prepared, finished) = match self.start(sink, timings).await {
            Ok(started) => started,
            Err(ending) => return Worked::ended(ending, String::new()),
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
}
