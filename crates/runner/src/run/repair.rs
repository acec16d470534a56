//! The verify-and-repair phase: the template's verification commands run after the
//! agent's work; a failure goes back to the agent for a bounded number of repair turns,
//! and work that still fails is kept as a `rejected` checkpoint instead of reaching the
//! draft.

use draftsmith_core::event::VerificationResult;
use draftsmith_engine::history::HistoryTurn;
use draftsmith_engine::model::Speaker;
use draftsmith_engine::{Finished, Job, Outcome};
use draftsmith_store::Manifest;

use super::error::{Ending, RunError};
use super::execution::Execution;
use super::prepare::Prepared;
use super::timings::RunTimings;
use crate::sandbox::SandboxCommands;
use crate::sink::RunSink;
use crate::verify::{Dependencies, Verdict, repair_prompt, verify};

/// The outcome to settle, or the run's ending; with the assistant's text either way.
pub(super) type Repaired = (Result<Outcome, Ending>, String);

impl Execution {
    /// Verifies a completed turn's work, handing failures back to the agent until it
    /// passes or the repair turns run out.
    pub(super) async fn verify_and_repair(
        &self,
        prepared: &Prepared,
        mut finished: Finished,
        sink: &RunSink,
        timings: &mut RunTimings,
    ) -> Repaired {
        let mut transcript = finished.transcript.clone();
        let commands = draftsmith_templates::find(&self.task.app.template)
            .map(|t| t.verify)
            .unwrap_or(&[]);
        let mut repairs = 0;
        while self.config.verify
            && !commands.is_empty()
            && matches!(finished.outcome, Outcome::Completed { .. })
        {
            let result = match self.verify(&prepared.manifest, commands, sink).await {
                Verdict::Passed => break,
                Verdict::Stopped => return (Err(self.cancelled()), transcript),
                Verdict::Failed(result) => result,
            };
            if repairs >= self.config.repair_turns {
                let rejected = self
                    .rejected_by_verification(sink, &prepared.manifest, &result, repairs)
                    .await;
                return (Err(rejected), transcript);
            }
            repairs += 1;
            let job = repair_job(&prepared.job, &transcript, &result);
            finished = match self.run_engine(job, sink, timings).await {
                Ok(finished) => finished,
                Err(error) => return (Err(error.into()), transcript),
            };
            if !finished.transcript.is_empty() {
                transcript = format!("{transcript}\n\n{}", finished.transcript);
            }
        }
        (Ok(finished.outcome), transcript)
    }

    /// One verification pass in the sandbox, with the shared dependencies linked first
    /// when the app has a lockfile.
    async fn verify(&self, manifest: &Manifest, commands: &[&str], sink: &RunSink) -> Verdict {
        let runner = SandboxCommands {
            controller: self.services.controller.clone(),
            id: self.sandbox.clone(),
        };
        let dependencies = manifest
            .files
            .iter()
            .any(|f| f.path == "package-lock.json")
            .then_some(Dependencies {
                controller: self.services.controller.as_ref(),
                id: &self.sandbox,
            });
        verify(sink, &runner, dependencies, commands, &self.stop.cancel).await
    }

    /// Verification still fails after the repair turns: the work becomes a `rejected`
    /// checkpoint and the draft stays as it was.
    async fn rejected_by_verification(
        &self,
        sink: &RunSink,
        manifest: &Manifest,
        result: &VerificationResult,
        repairs: usize,
    ) -> Ending {
        let changes = self.snapshot(manifest).await.unwrap_or_default();
        let rejected = if changes.is_empty() {
            None
        } else {
            self.reject(sink, manifest.revision, &changes, "failed verification")
                .await
        };
        Ending::Failed(RunError::Verification {
            command: result.command.clone(),
            exit_code: result.exit_code,
            repairs,
            rejected,
        })
    }
}

/// The job of a repair turn: the original exchange as history, the failure as the prompt.
fn repair_job(job: &Job, transcript: &str, result: &VerificationResult) -> Job {
    let mut repair = job.clone();
    repair.history.push(HistoryTurn {
        speaker: Speaker::User,
        text: job.prompt.clone(),
    });
    repair.history.push(HistoryTurn {
        speaker: Speaker::Assistant,
        text: transcript.to_owned(),
    });
    repair.prompt = repair_prompt(result);
    repair
}
