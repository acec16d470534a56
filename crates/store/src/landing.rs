//! A run's result landing on the draft in one transaction: the draft revision, its
//! `draft.synced` event, the `post_run` checkpoint and its event, the assistant's message,
//! the timings and the terminal event commit together or not at all, so a crash at any
//! moment leaves records that describe the draft.

use draftsmith_core::api::{ChatRole, CheckpointKind, MessageStatus};
use draftsmith_core::{AppId, ChatSessionId, EventBody, RunEvent, RunId, Timestamp, UserId};

use crate::chat;
use crate::checkpoint_log;
use crate::db::SqlStore;
use crate::draft_writes::{self, Wanted};
use crate::drafts::{DraftWrite, FileChange};
use crate::error::Result;
use crate::run_log::{Batch, append_batch_in_tx};
use crate::sql;

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

/// Lands `landing` (see [`crate::RunStore::land_run`]).
pub(crate) async fn land(store: &SqlStore, mut landing: Landing) -> Result<Landed> {
    let has_changes = !landing.changes.is_empty();
    let changes = std::mem::take(&mut landing.changes);
    let wanted = draft_writes::store_changes(&store.blobs, changes).await?;
    let (app, run, author) = (landing.app, landing.run, &landing.author);
    let mut tx = sql::begin_write(&store.writer).await?;
    // `draft.synced` (with changes) and `checkpoint.created` go out before the ending, all
    // three under one claim of seqs that also records the timings.
    let mut progress = Vec::new();
    let (revision, write) = if has_changes {
        let expected = Some(landing.expected);
        let write = draft_writes::write_in_tx(&mut tx, app, expected, &wanted, author).await?;
        let synced = EventBody::draft_synced(write.revision, write.changes.clone());
        progress.push((synced, Vec::new()));
        (write.revision, Some(write))
    } else {
        let same = draft_writes::write_in_tx(&mut tx, app, None, &Wanted::new(), author).await?;
        (same.revision, None)
    };
    let post_run = checkpoint_log::of_run(app, run, CheckpointKind::PostRun, revision, author);
    let checkpoint = checkpoint_log::insert(&mut tx, &post_run).await?;
    let created = EventBody::CheckpointCreated {
        checkpoint_id: checkpoint.id,
        kind: CheckpointKind::PostRun,
        revision,
    };
    progress.push((created, Vec::new()));
    if let Some((session, text, status)) = &landing.message {
        let (role, now) = (ChatRole::Assistant, Timestamp::now());
        chat::insert_message(&mut tx, *session, Some(run), role, text, *status, now).await?;
    }
    let ending = match landing.ending {
        EventBody::RunCompleted { summary, usage, .. } => EventBody::RunCompleted {
            revision,
            summary,
            usage,
        },
        other => other,
    };
    let batch = Batch {
        calls: &[],
        progress,
        last: Some((ending, Vec::new())),
        timing: Some(&landing.timing),
    };
    let events = append_batch_in_tx(&mut tx, run, batch).await?;
    tx.commit().await?;
    Ok(Landed { write, events })
}
