//! Uploaded files and the attachments that point at them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AppId, Timestamp, UploadId, UserId};

/// A file stored by `POST …/uploads`, ready to be attached to a prompt by its owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Upload {
    /// Its id, for `attachments` of `POST runs`.
    pub id: UploadId,
    /// The app it was uploaded to.
    pub app_id: AppId,
    /// Who uploaded it; nobody else can read or attach it.
    pub owner: UserId,
    /// The file name it was given (`upload` when none was).
    pub name: String,
    /// Its media type: sniffed from the bytes for images, as declared for text.
    pub media_type: String,
    /// Its size in bytes.
    pub size: i64,
    /// SHA-256 of its bytes (the content-addressed blob that holds them).
    pub sha256: String,
    /// Stored at.
    pub created_at: Timestamp,
}

/// One entry of `attachments` on `POST runs`: an upload id, or an object that also asks
/// for the bytes to be written into the draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AttachmentRef {
    /// Just the upload.
    Id(UploadId),
    /// The upload, optionally written into the workspace at `into`.
    Spec(AttachmentSpec),
}

/// An attachment with options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentSpec {
    /// The upload.
    pub id: UploadId,
    /// A draft path (e.g. `public/mockup.png`) the run writes the exact bytes to before
    /// the agent starts; validated like every draft path.
    #[serde(default)]
    pub into: Option<String>,
}

impl AttachmentRef {
    /// The upload it names.
    pub fn id(&self) -> UploadId {
        match self {
            Self::Id(id) => *id,
            Self::Spec(spec) => spec.id,
        }
    }

    /// Where it should be written, if anywhere.
    pub fn into_path(&self) -> Option<&str> {
        match self {
            Self::Id(_) => None,
            Self::Spec(spec) => spec.into.as_deref(),
        }
    }
}

/// An attachment as a chat message carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessageAttachment {
    /// The upload (`GET …/uploads/{id}` returns its bytes to its owner).
    pub upload_id: UploadId,
    /// Its file name.
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: i64,
    /// The draft path it was written to, when the prompt asked for that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub into: Option<String>,
}
