//! The end of a run that has work to sync: its changes, the draft revision they make, the
//! `post_run` checkpoint, the assistant's message and the terminal event land in one store
//! transaction ([`draftsmith_store::Store::land_run`]), so a crash at any moment leaves
//! records that describe the draft: either all of it landed, or none of it and the run is
//! ended as an orphan with the draft as it was.

use draftsmith_core::api::MessageStatus;
use draftsmith_core::{ErrorCode, EventBody};
use draftsmith_sandbox::SandboxId;
use draftsmith_store::{FileChange, Landing, Manifest, StoreError};
use serde_json::{Map, Value};

use crate::execute::{Ending, Execution, failed};
use crate::sink::RunSink;
use crate::sync::SyncError;

/// Environment variable of the test-only crash hook: set to `1`, the process kills itself
/// with SIGKILL right after a run's landing commits, before anything is published.
pub const CRASH_AFTER_LANDING: &str = "DRAFTSMITH_TEST_CRASH_AFTER_LANDING";

/// Work waiting to land: the workspace's changes against the manifest it was refreshed from.
pub(crate) struct Pending {
    manifest: Manifest,
    changes: Vec<FileChange>,
}

impl Execution {
    /// Takes the workspace's snapshot for a run ending with `body`; the run's records are
    /// written when it lands.
    pub(crate) async fn to_land(
        &self,
        sandbox: &SandboxId,
        manifest: Manifest,
        body: EventBody,
        message: MessageStatus,
    ) -> Ending {
        match self.snapshot(sandbox, &manifest).await {
            Ok(changes) => Ending {
                body,
                message,
                land: Some(Pending { manifest, changes }),
            },
            Err(ending) => ending,
        }
    }

    /// Lands the run's result with its terminal event, then publishes what was written. A
    /// conflict keeps the run's work as a `rejected` checkpoint and returns the failure to
    /// record instead.
    pub(crate) async fn land(
        &self,
        sink: &RunSink,
        pending: Pending,
        ending: Ending,
        transcript: &str,
        timing: &Map<String, Value>,
    ) -> Result<(), Ending> {
        let landing = Landing {
            app: self.app.id,
            run: self.run.run_id,
            expected: pending.manifest.revision,
            changes: pending.changes.clone(),
            author: self.run.created_by.clone(),
            message: (!transcript.is_empty()).then(|| {
                (
                    self.run.chat_session_id,
                    transcript.to_owned(),
                    ending.message,
                )
            }),
            timing: timing.clone(),
            ending: ending.body,
        };
        match crate::sync::land(self.store.as_ref(), &pending.manifest, landing).await {
            Ok(landed) => {
                crash_if_asked();
                sink.publish(&landed.events).await;
                Ok(())
            }
            Err(SyncError::Conflict { paths }) => Err(self.conflict(sink, &pending, paths).await),
            Err(SyncError::Store(StoreError::RunEnded)) => Err(self.cancelled()),
            Err(SyncError::Store(err)) => Err(failed(ErrorCode::Internal, err.to_string())),
        }
    }

    async fn conflict(&self, sink: &RunSink, pending: &Pending, paths: Vec<String>) -> Ending {
        let kept = self
            .reject(
                sink,
                pending.manifest.revision,
                &pending.changes,
                "conflicting draft change",
            )
            .await;
        let mut ending = failed(
            ErrorCode::CodingAgentRevisionConflict,
            format!(
                "the draft changed meanwhile in the same files: {}",
                paths.join(", ")
            ),
        );
        if let (EventBody::RunFailed { error }, Some(id)) = (&mut ending.body, kept) {
            error.details = Some(serde_json::json!({"paths": paths, "rejected_checkpoint_id": id}));
        }
        ending
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
