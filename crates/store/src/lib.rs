//! Durable state behind one interface, [`Store`], implemented once in SQL over SQLite (the
//! embedded default) and PostgreSQL (several instances sharing one database). Blobs sit
//! behind their own [`BlobStore`] so an object store can replace the database table.

mod blobs;
mod chat;
mod checkpoints;
mod db;
mod drafts;
mod error;
mod landing;
mod releases;
mod resources;
mod runs;

use async_trait::async_trait;
use draftsmith_core::api::{
    App, ChatMessage, ChatRole, ChatSession, Checkpoint, CheckpointKind, DraftFile, FilesChanged,
    MessageStatus, Run, StorageStats,
};
use draftsmith_core::{
    AppId, BlobHash, ChatSessionId, Diagnostic, DraftPath, EventBody, InstanceId, Role, RunEvent,
    RunId, Timestamp, UserId,
};

pub use blobs::{BlobStore, DbBlobs};
pub use checkpoints::{NewCheckpoint, diff_manifests};
pub use db::{Backend, SqlStore};
pub use error::{Result, StoreError};
pub use landing::{Landed, Landing};
pub use releases::{Encoded, NewRelease, PublicationRecord, ReleaseStore, StoredReleaseFile};
pub use resources::StoredResource;
pub use runs::NewRun;

/// A draft's file set at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The revision it describes.
    pub revision: i64,
    /// Files sorted by path.
    pub files: Vec<DraftFile>,
}

/// One change to a draft: new content, or `None` to delete the path.
#[derive(Debug, Clone)]
pub struct FileChange {
    /// Where.
    pub path: DraftPath,
    /// What it becomes.
    pub content: Option<Vec<u8>>,
}

/// What a draft write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftWrite {
    /// Revision after the write; equal to the previous one when nothing changed.
    pub revision: i64,
    /// Paths created.
    pub added: Vec<String>,
    /// Paths whose content changed.
    pub modified: Vec<String>,
    /// Paths removed.
    pub deleted: Vec<String>,
}

/// A new app with the template files of its first revision.
#[derive(Debug, Clone)]
pub struct NewApp {
    /// Display name.
    pub name: String,
    /// Wanted slug; a numeric suffix is added when it is taken.
    pub slug: String,
    /// Template id.
    pub template: String,
    /// Creator.
    pub owner: UserId,
    /// Files of revision 1.
    pub files: Vec<(DraftPath, Vec<u8>)>,
}

/// Who a credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
}

/// Everything draftsmith persists. Implementations must be safe to share between instances
/// of the service: invariants live in the database, not in process memory.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is, for health and capabilities.
    fn backend(&self) -> Backend;
    /// Checks the database answers.
    async fn ping(&self) -> Result<()>;

    /// Stores a token by its hash.
    async fn insert_token(&self, token_hash: &str, who: &Principal, label: &str) -> Result<()>;
    /// Looks a token up by its hash.
    async fn find_token(&self, token_hash: &str) -> Result<Option<Principal>>;
    /// How many tokens exist (the first start creates one when there are none).
    async fn count_tokens(&self) -> Result<i64>;
    /// Stores a browser session by its hash.
    async fn insert_web_session(
        &self,
        hash: &str,
        who: &Principal,
        expires: Timestamp,
    ) -> Result<()>;
    /// Looks up an unexpired browser session.
    async fn find_web_session(&self, hash: &str, now: Timestamp) -> Result<Option<Principal>>;
    /// Ends a browser session.
    async fn delete_web_session(&self, hash: &str) -> Result<()>;

    /// Creates an app with its draft at revision 1.
    async fn create_app(&self, new: NewApp) -> Result<App>;
    /// One app.
    async fn app(&self, id: AppId) -> Result<App>;
    /// Apps, newest first; only `owner`'s when given.
    async fn apps(&self, owner: Option<&UserId>) -> Result<Vec<App>>;

    /// The current manifest.
    async fn draft(&self, app: AppId) -> Result<Manifest>;
    /// The manifest as it was at `revision`.
    async fn manifest_at(&self, app: AppId, revision: i64) -> Result<Manifest>;
    /// One file of the current draft with its content, and the draft's revision.
    async fn read_file(&self, app: AppId, path: &DraftPath) -> Result<(i64, DraftFile, Vec<u8>)>;
    /// Applies `changes` as one new revision. With `expected`, fails with
    /// [`StoreError::RevisionConflict`] unless the draft is still at that revision.
    async fn write_draft(
        &self,
        app: AppId,
        expected: Option<i64>,
        changes: Vec<FileChange>,
        author: &UserId,
    ) -> Result<DraftWrite>;

    /// Lands a run's result: the draft revision, `draft.synced`, the `post_run` checkpoint
    /// and its event, the assistant's message, the timings and the terminal event, in one
    /// transaction. [`StoreError::RevisionConflict`] when the draft moved past
    /// `landing.expected`, [`StoreError::RunEnded`] when the run already ended; either way
    /// nothing is written.
    async fn land_run(&self, landing: Landing) -> Result<Landed>;

    /// Persists a run, its user message and its `run.accepted` event at once (creating the
    /// chat session when none is named). A second active run on the app is
    /// [`StoreError::RunActive`].
    async fn create_run(&self, new: NewRun) -> Result<Run>;
    /// One run.
    async fn run(&self, id: RunId) -> Result<Run>;
    /// An app's runs, newest first, before the `(created_at, id)` cursor.
    async fn runs(&self, app: AppId, limit: i64, before: Option<(i64, RunId)>) -> Result<Vec<Run>>;
    /// The app's active run, if any.
    async fn active_run(&self, app: AppId) -> Result<Option<RunId>>;
    /// Appends an event with the next `seq`, applying the status change it implies; fails
    /// with [`StoreError::RunEnded`] once the run is terminal.
    async fn append_event(
        &self,
        run: RunId,
        body: EventBody,
        diagnostics: Vec<Diagnostic>,
    ) -> Result<RunEvent>;
    /// Events with `seq > after`, in order.
    async fn events_after(&self, run: RunId, after: i64, limit: i64) -> Result<Vec<RunEvent>>;
    /// Records the run's phase timings.
    async fn set_run_timing(
        &self,
        run: RunId,
        timing: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()>;
    /// Marks an active run for cancellation; its executing instance acts on it.
    async fn request_cancel(&self, run: RunId, by: &UserId) -> Result<()>;
    /// Active runs owned by `owner` that someone asked to cancel, with who asked.
    async fn runs_to_cancel(&self, owner: InstanceId) -> Result<Vec<(RunId, String)>>;
    /// Extends the leases `owner` holds on `runs`.
    async fn renew_leases(&self, owner: InstanceId, runs: &[RunId], until: Timestamp)
    -> Result<()>;
    /// Active runs whose lease expired before `now`, plus all active runs of
    /// `previous_life` (this instance before a restart).
    async fn orphaned_runs(
        &self,
        previous_life: Option<InstanceId>,
        now: Timestamp,
    ) -> Result<Vec<RunId>>;

    /// One chat session.
    async fn chat_session(&self, id: ChatSessionId) -> Result<ChatSession>;
    /// A user's sessions on an app, most recent first.
    async fn chat_sessions(&self, app: AppId, user: &UserId) -> Result<Vec<ChatSession>>;
    /// A session's messages, oldest first.
    async fn chat_messages(&self, session: ChatSessionId) -> Result<Vec<ChatMessage>>;
    /// Adds a message to a session.
    async fn add_chat_message(
        &self,
        session: ChatSessionId,
        run: Option<RunId>,
        role: ChatRole,
        content: &str,
        status: MessageStatus,
    ) -> Result<ChatMessage>;

    /// Takes a checkpoint.
    async fn create_checkpoint(&self, new: NewCheckpoint) -> Result<Checkpoint>;
    /// One checkpoint.
    async fn checkpoint(&self, id: &str) -> Result<Checkpoint>;
    /// An app's checkpoints, newest first, before the `(created_at, id)` cursor.
    async fn checkpoints(
        &self,
        app: AppId,
        limit: i64,
        before: Option<(i64, String)>,
    ) -> Result<Vec<Checkpoint>>;
    /// The checkpoint a run took of `kind`, if any.
    async fn run_checkpoint(&self, run: RunId, kind: CheckpointKind) -> Result<Option<Checkpoint>>;
    /// The manifest a checkpoint points at.
    async fn checkpoint_manifest(&self, checkpoint: &Checkpoint) -> Result<Manifest>;
    /// What the draft's revisions `(from, to]` changed, net.
    async fn changes_between(&self, app: AppId, from: i64, to: i64) -> Result<FilesChanged>;
    /// Makes the draft equal to `target` as a new revision after a `restore` checkpoint of
    /// what it replaces; [`StoreError::RunActive`] while a run is active.
    async fn restore_to(
        &self,
        app: AppId,
        target: &Manifest,
        author: &UserId,
        label: &str,
    ) -> Result<(DraftWrite, Checkpoint)>;

    /// Creates (`create`) or replaces an agent or tool document.
    async fn put_resource(&self, resource: &StoredResource, create: bool) -> Result<()>;
    /// One agent or tool.
    async fn resource(&self, kind: &str, id: &str) -> Result<StoredResource>;
    /// Agents or tools, by name; only `owner`'s when given.
    async fn resources(&self, kind: &str, owner: Option<&UserId>) -> Result<Vec<StoredResource>>;
    /// Deletes an agent or tool.
    async fn delete_resource(&self, kind: &str, id: &str) -> Result<()>;
    /// Sets or clears an app's selected runtime agent.
    async fn select_agent(&self, app: AppId, agent: Option<&str>) -> Result<()>;

    /// Counts for operators.
    async fn stats(&self) -> Result<StorageStats>;
    /// The blob store this store writes through.
    fn blobs(&self) -> &dyn BlobStore;
    /// Releases and publications.
    fn releases(&self) -> &dyn ReleaseStore;
    /// Content of one blob.
    async fn blob(&self, hash: &BlobHash) -> Result<Vec<u8>> {
        self.blobs()
            .get(hash)
            .await?
            .ok_or(StoreError::NotFound("blob"))
    }
}
