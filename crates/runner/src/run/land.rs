//! The land phase. A run that has work to sync takes the workspace's snapshot; its
//! changes, the draft revision they make, the `post_run` checkpoint, the assistant's
//! message and the terminal event then land in one store transaction
//! ([`draftsmith_store::Store::land_run`]), so a crash at any moment leaves records that
//! describe the draft: either all of it landed, or none of it and the run is ended as an
//! orphan with the draft as it was. Work that cannot land is kept as a `rejected`
//! checkpoint.

use draftsmith_core::api::CheckpointKind;
use draftsmith_core::{BlobHash, EventBody};
use draftsmith_engine::Outcome;
use draftsmith_store::{FileChange, Landing, Manifest, NewCheckpoint, StoreError};

use super::error::{Ending, RunError};
use super::execution::Execution;
use super::timings::RunTimings;
use crate::sink::RunSink;
use crate::sync::SyncError;

/// Environment variable of the test-only crash hook: set to `1`, the process kills itself
/// with SIGKILL right after a run's landing commits, before anything is published.
pub const CRASH_AFTER_LANDING: &str = "DRAFTSMITH_TEST_CRASH_AFTER_LANDING";

/// What the work phases leave for the ending: how it ends, the assistant's text, and the
/// work to land when there is any.
pub(super) struct Worked {
    pub(super) ending: Ending,
    pub(super) transcript: String,
    pub(super) pending: Option<Pending>,
}

impl Worked {
    pub(super) fn ended(ending: impl Into<Ending>, transcript: String) -> Self {
        Self {
            ending: ending.into(),
            transcript,
            pending: None,
        }
    }
}

/// Work waiting to land: the workspace's changes against the manifest it was refreshed from.
pub(crate) struct Pending {
    manifest: Manifest,
    changes: Vec<FileChange>,
}

impl Execution {
    /// The engine's outcome as the run's ending; a completed or paused run takes the
    /// workspace's snapshot to land with it.
    pub(super) async fn settle(
        &self,
        manifest: Manifest,
        outcome: Outcome,
        transcript: String,
    ) -> Worked {
        let ending = match outcome {
            Outcome::Completed { summary } => Ending::Completed { summary },
            Outcome::Paused { reason } => Ending::Paused { reason },
            Outcome::Failed { error } => return Worked::ended(RunError::Engine(error), transcript),
            Outcome::Cancelled => return Worked::ended(self.cancelled(), transcript),
        };
        match self.snapshot(&manifest).await {
            Ok(changes) => Worked {
                ending,
                transcript,
                pending: Some(Pending { manifest, changes }),
            },
            Err(error) => Worked::ended(error, transcript),
        }
    }

    /// The workspace's changes against the manifest it was refreshed from.
    pub(super) async fn snapshot(&self, manifest: &Manifest) -> Result<Vec<FileChange>, RunError> {
        self.services
            .controller
            .snapshot(&self.sandbox, &manifest.files)
            .await
            .map_err(RunError::Sandbox)
    }

    /// Lands the run's result with its terminal event, then publishes what was written. A
    /// conflict keeps the run's work as a `rejected` checkpoint and returns the failure to
    /// record instead.
    pub(super) async fn land(
        &self,
        sink: &RunSink,
        pending: Pending,
        ending: &Ending,
        transcript: &str,
        timings: &RunTimings,
    ) -> Result<(), Ending> {
        let run = &self.task.run;
        let landing = Landing {
            app: self.task.app.id,
            run: run.run_id,
            expected: pending.manifest.revision,
            changes: pending.changes.clone(),
            author: run.created_by.clone(),
            message: (!transcript.is_empty())
                .then(|| (run.chat_session_id, transcript.to_owned(), ending.message())),
            timing: timings.to_map(),
            ending: ending.body(),
        };
        let store = self.services.store.as_ref();
        match crate::sync::land(store, &pending.manifest, landing).await {
            Ok(landed) => {
                crash_if_asked();
                sink.publish(&landed.events).await;
                Ok(())
            }
            Err(SyncError::Conflict { paths }) => Err(self.conflict(sink, &pending, paths).await),
            Err(SyncError::Store(StoreError::RunEnded)) => Err(self.cancelled()),
            Err(SyncError::Store(err)) => Err(Ending::Failed(RunError::Landing(err))),
        }
    }

    async fn conflict(&self, sink: &RunSink, pending: &Pending, paths: Vec<String>) -> Ending {
        let base = pending.manifest.revision;
        let label = "conflicting draft change";
        let rejected = self.reject(sink, base, &pending.changes, label).await;
        Ending::Failed(RunError::Conflict { paths, rejected })
    }

    /// Keeps work that will not reach the draft as a `rejected` checkpoint on top of
    /// `base`; returns its id.
    pub(super) async fn reject(
        &self,
        sink: &RunSink,
        base: i64,
        changes: &[FileChange],
        label: &str,
    ) -> Option<String> {
        let store = &self.services.store;
        let blobs: Vec<(BlobHash, &[u8])> = changes
            .iter()
            .filter_map(|c| c.content.as_deref().map(|b| (BlobHash::of(b), b)))
            .collect();
        let refs: Vec<(&BlobHash, &[u8])> = blobs.iter().map(|(h, b)| (h, *b)).collect();
        if let Err(err) = store.blobs().put_many(&refs).await {
            tracing::error!(error = %err, "could not keep the rejected work");
            return None;
        }
        let detached = changes
            .iter()
            .map(|c| {
                let value = c
                    .content
                    .as_deref()
                    .map(|b| (BlobHash::of(b), b.len() as i64));
                (c.path.as_str().to_owned(), value)
            })
            .collect();
        let checkpoint = store
            .create_checkpoint(NewCheckpoint {
                app: self.task.app.id,
                kind: CheckpointKind::Rejected,
                revision: base,
                run: Some(self.task.run.run_id),
                label: label.into(),
                by: self.task.run.created_by.clone(),
                detached: Some(detached),
            })
            .await
            .ok()?;
        let created = EventBody::CheckpointCreated {
            checkpoint_id: checkpoint.id.clone(),
            kind: CheckpointKind::Rejected,
            revision: base,
        };
        sink.record(created, Vec::new()).await.ok()?;
        Some(checkpoint.id)
    }
}

/// The test-only crash hook: inert unless [`CRASH_AFTER_LANDING`] is `1`.
fn crash_if_asked() {
    if std::env::var(CRASH_AFTER_LANDING).is_ok_and(|v| v == "1") {
        tracing::warn!("{CRASH_AFTER_LANDING} is set: killing the process after the landing");
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        std::process::abort();
    }
}
