//! Apps, drafts, tokens, sessions and health.

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
