//! A run's result landing on the draft in one transaction: the draft revision, its
//! `draft.synced` event, the `post_run` checkpoint and its event, the assistant's message,
//! the timings and the terminal event commit together or not at all, so a crash at any
//! moment leaves records that describe the draft.

use draftsmith_core::api::ChatRole;
use draftsmith_core::api::{CheckpointKind, MessageStatus};
use draftsmith_core::{
    AppId, ChatSessionId, EventBody, RunEvent, RunId, RunStatus, Timestamp, UserId,
};

use crate::db::SqlStore;
use crate::runs::append_in_tx;
use crate::{DraftWrite, FileChange, Result};

/// Everything a run's successful ending writes.
#[derive(Debug, Clone)]
pub struct Landing {
    /// The app.
    pub app: AppId,
    /// The run.
    pub run: RunId,
    /// The draft revision the changes were checked against: a draft that moved on since
    /// fails the landing with [`crate::StoreError::RevisionConflict`] and nothing is written.
    pub expected: i64,
    /// The workspace's changes; none leaves the draft as it is (no `draft.synced`).
    pub changes: Vec<FileChange>,
    /// Who the revision and the checkpoint are attributed to.
    pub author: UserId,
    /// The assistant's message to the run's chat session, when it said something.
    pub message: Option<(ChatSessionId, String, MessageStatus)>,
    /// The run's phase timings.
    pub timing: serde_json::Map<String, serde_json::Value>,
    /// The terminal event (`run.completed` or `run.paused`); a `run.completed` gets the
    /// revision that landed.
    pub ending: EventBody,
}

/// What a landing wrote.
#[derive(Debug, Clone)]
pub struct Landed {
    /// The draft write, when there were changes.
    pub write: Option<DraftWrite>,
    /// The events appended, in order, for publishing.
    pub events: Vec<RunEvent>,
}

pub(crate) async fn land(store: &SqlStore, landing: Landing) -> Result<Landed> {
    let has_changes = !landing.changes.is_empty();
    let wanted = crate::drafts::store_changes(store, landing.changes).await?;
    let app = landing.app;
    let run = landing.run;
    let active = RunStatus::ACTIVE;
    let mut tx = crate::db::begin_write(&store.pool).await?;
    let mut events = Vec::new();
    let (revision, write) = if has_changes {
        let write = crate::drafts::write_in_tx(
            &mut tx,
            app,
            Some(landing.expected),
            &wanted,
            &landing.author,
        )
        .await?;
        let synced = EventBody::DraftSynced {
            revision: write.revision,
            added: write.added.clone(),
            modified: write.modified.clone(),
            deleted: write.deleted.clone(),
        };
        events.push(append_in_tx(&mut tx, run, synced, Vec::new(), &active).await?);
        (write.revision, Some(write))
    } else {
        let empty = crate::drafts::Wanted::new();
        let same = crate::drafts::write_in_tx(&mut tx, app, None, &empty, &landing.author).await?;
        (same.revision, None)
    };
    let checkpoint = crate::checkpoints::insert(
        &mut tx,
        &crate::checkpoints::NewCheckpoint {
            app,
            kind: CheckpointKind::PostRun,
            revision,
            run: Some(run),
            label: "after the run".into(),
            by: landing.author.clone(),
            detached: None,
        },
    )
    .await?;
    let created = EventBody::CheckpointCreated {
        checkpoint_id: checkpoint.id,
        kind: CheckpointKind::PostRun.as_str().into(),
        revision,
    };
    events.push(append_in_tx(&mut tx, run, created, Vec::new(), &active).await?);
    if let Some((session, text, status)) = &landing.message {
        crate::chat::insert_message(
            &mut tx,
            *session,
            Some(run),
            ChatRole::Assistant,
            text,
            *status,
            Timestamp::now(),
        )
        .await?;
    }
    crate::runs::set_timing_in_tx(&mut tx, run, &landing.timing).await?;
    let ending = match landing.ending {
        EventBody::RunCompleted { summary, .. } => EventBody::RunCompleted { revision, summary },
        other => other,
    };
    let from = ending
        .terminal_status()
        .map(RunStatus::predecessors)
        .unwrap_or_else(|| active.to_vec());
    events.push(append_in_tx(&mut tx, run, ending, Vec::new(), &from).await?);
    tx.commit().await?;
    Ok(Landed { write, events })
}
