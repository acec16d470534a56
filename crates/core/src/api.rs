//! Request and response bodies of the HTTP API. The server, the CLI and the tests all use
//! these types, so a field is named in exactly one place.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AppId, BlobHash, Role, Timestamp, UserId};

/// `POST /admin/apps`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    /// Display name; the slug is derived from it. 1-100 characters, not all blank, no
    /// control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$"
    )]
    pub name: String,
    /// Built-in template id: `vite-react` or `static`.
    pub template: String,
}

/// An app and the pointer to its draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct App {
    /// Stable id.
    pub id: AppId,
    /// URL-safe unique name derived from `name`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Template the app was created from.
    pub template: String,
    /// The user who created the app.
    pub owner_user_id: UserId,
    /// The runtime agent the app embeds, when one is selected.
    pub selected_agent_id: Option<String>,
    /// Current draft revision.
    pub draft_revision: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change to the app or its draft.
    pub updated_at: Timestamp,
}

/// `GET /admin/apps`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppList {
    /// Apps visible to the caller, newest first.
    pub apps: Vec<App>,
}

/// One file of a draft manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DraftFile {
    /// Normalised relative path.
    pub path: String,
    /// Size in bytes.
    pub size: i64,
    /// SHA-256 of the content.
    pub sha256: BlobHash,
}

/// `GET /admin/apps/{app_id}/draft`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Draft {
    /// The app.
    pub app_id: AppId,
    /// Revision this listing describes.
    pub revision: i64,
    /// Every file, sorted by path.
    pub files: Vec<DraftFile>,
}

/// Answer to a file write or delete: the draft's new revision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileChanged {
    /// The app.
    pub app_id: AppId,
    /// Draft revision after the change (unchanged when the write changed nothing).
    pub revision: i64,
    /// The normalised path.
    pub path: String,
    /// The file after the change; absent after a delete.
    pub file: Option<DraftFile>,
}

/// `POST /admin/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// User the token acts as: 1-64 letters, digits, `.`, `_`, `-` or `@`.
    #[schema(pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    pub user: String,
    /// Role of the token; `builder` when omitted.
    #[serde(default = "default_role")]
    pub role: Role,
}

fn default_role() -> Role {
    Role::Builder
}

/// A freshly minted token; the secret is shown once and stored only hashed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    /// The bearer secret.
    pub token: String,
    /// User it acts as.
    pub user_id: UserId,
    /// Its role.
    pub role: Role,
}

/// `POST /auth/session`: exchange a token for a cookie (browsers' `EventSource` sends no headers).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebSession {
    /// A bearer token.
    pub token: String,
}

/// `GET /admin/me`: who the credentials belong to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The user.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
}

/// `GET /admin/storage`: what the blob store holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StorageStats {
    /// Distinct blobs stored.
    pub blobs: i64,
    /// Sum of their sizes.
    pub blob_bytes: i64,
    /// Apps stored.
    pub apps: i64,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// Server version.
    pub version: String,
}

/// `POST …/coding-agent/runs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// The prompt: up to 100,000 characters, not all blank.
    #[schema(min_length = 1, max_length = 100000, pattern = "\\S")]
    pub input: String,
    /// `provider/model` or `auto`; the policy's default when omitted.
    #[serde(default)]
    pub model_id: Option<String>,
    /// `opencode` or `native`; the policy's default when omitted.
    #[serde(default)]
    pub engine: Option<crate::EngineKind>,
    /// Continue this chat session; a new one when omitted.
    #[serde(default)]
    pub chat_session_id: Option<crate::ChatSessionId>,
}

/// A run as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    /// Its id.
    pub run_id: crate::RunId,
    /// Its app.
    pub app_id: AppId,
    /// Where it is in its lifecycle.
    pub status: crate::RunStatus,
    /// Engine it runs on.
    pub engine: crate::EngineKind,
    /// What the caller asked for (`auto` when omitted).
    pub requested_model_id: String,
    /// The model it is pinned to for its whole life.
    pub resolved_model_id: String,
    /// Its chat session.
    pub chat_session_id: crate::ChatSessionId,
    /// Where to follow its events.
    pub stream_url: String,
    /// The prompt.
    pub input: String,
    /// Who started it.
    pub created_by: UserId,
    /// Draft revision when it was accepted (its `pre_run` point).
    pub base_revision: i64,
    /// Draft revision it produced, once synced.
    pub result_revision: Option<i64>,
    /// The final answer, once completed.
    pub summary: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<crate::EventError>,
    /// Who asked to cancel it, when someone did.
    pub cancel_requested_by: Option<String>,
    /// Phase timings in milliseconds (`create_run`, `first_token`, `total`, …).
    #[schema(value_type = Object)]
    pub timing_metrics_ms: serde_json::Map<String, serde_json::Value>,
    /// Number of events in its log so far.
    pub last_seq: i64,
    /// Accepted at.
    pub created_at: Timestamp,
    /// Started working at.
    pub started_at: Option<Timestamp>,
    /// Reached its terminal state at.
    pub ended_at: Option<Timestamp>,
    /// What the run was given besides the prompt: `context.selected_agent_contract`, …
    #[schema(value_type = Object)]
    pub input_params: serde_json::Value,
}

/// The relative URL of a run's event stream.
pub fn stream_url(app: AppId, run: crate::RunId) -> String {
    format!("/admin/apps/{app}/coding-agent/runs/{run}/stream")
}

/// `GET …/coding-agent/runs`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RunList {
    /// This page.
    pub runs: Vec<Run>,
    /// Pass as `?before=` for the next page; absent on the last one.
    pub next_before: Option<String>,
}

/// One entry of the model registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    /// `provider/model`.
    pub id: String,
    /// Provider id.
    pub provider: String,
    /// `openai` or `anthropic`.
    pub kind: String,
    /// Whether runs may use it now.
    pub available: bool,
    /// Why not, when unavailable.
    pub unavailable_reason: Option<String>,
    /// Its window, limits, vision, reasoning setting, prices and caching.
    pub facts: crate::model::ModelFacts,
}

/// `GET …/coding-agent/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    /// Every registered model.
    pub models: Vec<ModelInfo>,
    /// What `auto` resolves to now; absent when nothing is available.
    pub auto: Option<String>,
}

/// A native tool as capabilities list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NativeToolInfo {
    /// Display name.
    pub name: String,
    /// URL-safe name.
    pub slug: String,
    /// Name the model calls.
    pub function_name: String,
}

/// How the OpenCode engine is set up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OpencodePolicy {
    /// Whether runs can use it now.
    pub available: bool,
    /// Why not, when unavailable.
    pub unavailable_reason: Option<String>,
    /// Tools OpenCode brings itself and that draftsmith leaves to it.
    pub delegated_tools: Vec<String>,
    /// Tools disabled because they make no sense here.
    pub disabled_tools: Vec<String>,
    /// Custom tools seeded into each workspace's `.opencode/tools/`.
    pub project_custom_tools: Vec<String>,
    /// How permission requests are answered.
    pub permission_model: String,
}

/// `GET …/coding-agent/capabilities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Capabilities {
    /// Engine used when a run names none.
    pub default_engine: crate::EngineKind,
    /// Whether `native` may be chosen.
    pub native_enabled: bool,
    /// The native toolpack.
    pub native_tools: Vec<NativeToolInfo>,
    /// Its size.
    pub native_tool_count: usize,
    /// The OpenCode engine's setup.
    pub opencode_policy: OpencodePolicy,
    /// The model registry.
    pub models: ModelList,
    /// Sandbox confinement in force: `bwrap` or `none`.
    pub sandbox_isolation: String,
    /// What sandboxes' private network reaches: `proxy` (the allow-list through the egress
    /// proxy), `none` (loopback only), `host` (no network namespace), or `unknown` (a
    /// remote controller).
    pub sandbox_egress: String,
    /// The host names the egress proxy allows.
    pub sandbox_egress_allow: Vec<String>,
    /// Who sandbox processes run as and how each resource limit is enforced; absent when
    /// the sandbox controller does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_limits: Option<SandboxLimits>,
}

/// The identity and resource limits of sandboxes (`[sandbox.limits]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SandboxLimits {
    /// `per_sandbox_uid` (an unprivileged host uid per sandbox) or `service_uid`.
    pub identity: String,
    /// Processes and threads at once.
    pub processes: LimitInForce,
    /// Memory, in MiB.
    pub memory_mib: LimitInForce,
    /// CPU weight (1024 = one ordinary share).
    pub cpu_shares: LimitInForce,
    /// Workspace size, in MiB.
    pub disk_mib: LimitInForce,
    /// Open files per process.
    pub open_files: LimitInForce,
}

/// One limit: its value (0 = off) and what enforces it: `cgroup_v2`, `cgroup_v1`,
/// `rlimit`, `off` or `unenforced`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LimitInForce {
    /// The configured value.
    pub value: u64,
    /// The mechanism.
    pub mechanism: String,
}

/// One conversation of one user on one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatSession {
    /// Its id.
    pub id: crate::ChatSessionId,
    /// The app.
    pub app_id: AppId,
    /// Its owner.
    pub user_id: UserId,
    /// The first prompt, shortened.
    pub title: String,
    /// Started at.
    pub created_at: Timestamp,
    /// Last message at.
    pub updated_at: Timestamp,
}

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    /// The person.
    User,
    /// The agent.
    Assistant,
}

/// Whether a message is whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// The full message.
    Complete,
    /// What an agent had said when its run was cancelled or failed.
    Partial,
}

/// One message of a chat session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// Its id.
    pub id: String,
    /// The session.
    pub session_id: crate::ChatSessionId,
    /// The run it belongs to.
    pub run_id: Option<crate::RunId>,
    /// Who wrote it.
    pub role: ChatRole,
    /// Its text.
    pub content: String,
    /// Whole or partial.
    pub status: MessageStatus,
    /// Written at.
    pub created_at: Timestamp,
}

/// Why a checkpoint was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// Before a run changed anything.
    PreRun,
    /// After a run's work was synced.
    PostRun,
    /// The draft as it was just before a restore replaced it.
    Restore,
    /// Taken by a person.
    Manual,
    /// Work a run produced that failed verification and never reached the draft.
    Rejected,
}

impl CheckpointKind {
    /// Every kind.
    pub const ALL: [CheckpointKind; 5] = [
        Self::PreRun,
        Self::PostRun,
        Self::Restore,
        Self::Manual,
        Self::Rejected,
    ];

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreRun => "pre_run",
            Self::PostRun => "post_run",
            Self::Restore => "restore",
            Self::Manual => "manual",
            Self::Rejected => "rejected",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl PartialEq<str> for CheckpointKind {
    /// Compares with the stored and wire spelling.
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl std::fmt::Display for CheckpointKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Paths that differ between two manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FilesChanged {
    /// Created.
    pub added: Vec<String>,
    /// Content changed.
    pub modified: Vec<String>,
    /// Removed.
    pub deleted: Vec<String>,
}

impl FilesChanged {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.deleted.is_empty()
    }
}

/// An immutable pointer to a draft manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// Its id.
    pub id: String,
    /// The app.
    pub app_id: AppId,
    /// Why it was taken.
    pub kind: CheckpointKind,
    /// The draft revision it points at (for `rejected`: the revision its work was based on).
    pub revision: i64,
    /// The run that took it.
    pub run_id: Option<crate::RunId>,
    /// A label for people.
    pub label: String,
    /// Who took it.
    pub created_by: UserId,
    /// When.
    pub created_at: Timestamp,
    /// What differs from the previous checkpoint (in time); filled in listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<FilesChanged>,
}

/// `GET …/coding-agent/checkpoints`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointList {
    /// This page.
    pub checkpoints: Vec<Checkpoint>,
    /// Pass as `?before=` for the next page.
    pub next_before: Option<String>,
}

/// `POST …/coding-agent/checkpoints`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCheckpoint {
    /// A label for people, up to 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub label: Option<String>,
}

/// `POST …/runs/{run_id}/revert`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertRun {
    /// Revert even when the draft changed after the run.
    #[serde(default)]
    pub force: bool,
}

/// Answer to a restore or revert: the new revision and the checkpoint that keeps what it
/// replaced (so the restore can itself be undone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Restored {
    /// The draft revision after the restore.
    pub revision: i64,
    /// The `restore` checkpoint of the replaced draft.
    pub restore_checkpoint: Checkpoint,
    /// What the restore changed.
    pub changes: FilesChanged,
}

/// One file of a diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileDiff {
    /// The path.
    pub path: String,
    /// `added`, `modified` or `deleted`.
    pub change: String,
    /// Whether either side is not UTF-8 text (then `diff` is empty).
    pub binary: bool,
    /// Unified diff text.
    pub diff: String,
}

/// `GET …/checkpoints/{id}/diff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointDiff {
    /// The checkpoint.
    pub from: String,
    /// What it is compared with: a checkpoint id or `current`.
    pub against: String,
    /// Files that differ, by path.
    pub files: Vec<FileDiff>,
}

/// `GET …/chat-sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatSessionDetail {
    /// The session.
    #[serde(flatten)]
    pub session: ChatSession,
    /// Its messages, oldest first.
    pub messages: Vec<ChatMessage>,
}

/// `GET …/chat-sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatSessionList {
    /// The caller's sessions on the app, most recent first.
    pub sessions: Vec<ChatSession>,
}
