//! Publishing: immutable releases of an app and the pointer that makes one of them live at
//! `/p/{slug}/`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AppId, BlobHash, Timestamp, UserId};

/// `POST /admin/apps/{app_id}/releases`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    /// The checkpoint whose manifest is built; the current draft revision when absent.
    #[serde(default)]
    #[schema(format = Uuid)]
    pub checkpoint_id: Option<String>,
    /// Whether the new release goes live at once (default `true`).
    #[serde(default)]
    pub promote: Option<bool>,
}

/// One file of a release, as served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseFile {
    /// Path under the published URL.
    pub path: String,
    /// Bytes (uncompressed).
    pub size: i64,
    /// SHA-256 of the bytes; also the file's `ETag`.
    pub sha256: BlobHash,
    /// The `Content-Type` it is served with.
    pub content_type: String,
}

/// An immutable, built snapshot of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Release {
    /// Its id.
    pub id: String,
    /// The app.
    pub app_id: AppId,
    /// 1, 2, 3… per app.
    pub number: i64,
    /// The draft revision that was built.
    pub revision: i64,
    /// The checkpoint that was built, when one was named.
    pub checkpoint_id: Option<String>,
    /// The tail of the build's output.
    pub build_log: String,
    /// How many files it serves.
    pub file_count: i64,
    /// Their total size in bytes (uncompressed).
    pub size: i64,
    /// Who published it.
    pub created_by: UserId,
    /// When.
    pub created_at: Timestamp,
    /// Whether it is the one being served.
    pub live: bool,
    /// The files; only on `GET releases/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<ReleaseFile>>,
}

/// `GET /admin/apps/{app_id}/releases`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReleaseList {
    /// Every release of the app.
    pub releases: Vec<Release>,
}

/// Who may open a published app.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone with the URL.
    #[default]
    Public,
    /// Only requests that present the owner's access key.
    Private,
}

impl Visibility {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "private" => Some(Self::Private),
            _ => None,
        }
    }
}

/// An app's publication: which release is live, where, and for whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Publication {
    /// The app.
    pub app_id: AppId,
    /// The live release; `null` while unpublished.
    pub release_id: Option<String>,
    /// Who may open it.
    pub visibility: Visibility,
    /// Where it is served on this service (`/p/{slug}/`).
    pub path: String,
    /// Its own origin (`https://{slug}.{apps domain}/`) when an apps domain is configured.
    pub domain_url: Option<String>,
}

/// `PUT /admin/apps/{app_id}/publication`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPublication {
    /// Who may open it.
    pub visibility: Visibility,
    /// Required for `private`: the key visitors present, as the password of HTTP Basic
    /// authentication or in the path (`/p/{slug}/~{key}/…`). 16–128 characters of
    /// `[A-Za-z0-9_-]`.
    #[serde(default)]
    pub access_key: Option<String>,
}
