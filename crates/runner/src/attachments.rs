//! A prompt's attachments, checked before anything is persisted: each names an upload of
//! the caller on this app, images need a model with vision, and an `into` path passes the
//! draft path policy. At run time they become the engine's [`Attachment`]s and the files
//! written into the workspace.

use draftsmith_core::api::{App, AttachmentRef, MessageAttachment};
use draftsmith_core::{DraftPath, PathError, UserId};
use draftsmith_engine::{Attachment, ResolvedModel};
use draftsmith_store::{Store, StoreError};

/// Most attachments one prompt may carry.
pub const MAX_ATTACHMENTS: usize = 10;

/// Why a prompt's attachments were refused.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    /// More than [`MAX_ATTACHMENTS`], or the same upload twice.
    #[error("{0}")]
    Invalid(String),
    /// No upload of the caller on this app has that id (another user's is not visible).
    #[error("upload {0} not found")]
    NotFound(String),
    /// The model cannot take this attachment (an image for a model without vision).
    #[error("{0}")]
    Unsupported(String),
    /// An `into` path the draft path policy refuses.
    #[error("attachments[{index}].into: {error}")]
    Path {
        /// Which attachment.
        index: usize,
        /// Why.
        error: PathError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The attachments as the user's chat message records them, after every check.
pub async fn resolve(
    store: &dyn Store,
    app: &App,
    user: &UserId,
    refs: &[AttachmentRef],
    model: &ResolvedModel,
) -> Result<Vec<MessageAttachment>, AttachmentError> {
    if refs.len() > MAX_ATTACHMENTS {
        return Err(AttachmentError::Invalid(format!(
            "at most {MAX_ATTACHMENTS} attachments per prompt"
        )));
    }
    let mut resolved: Vec<MessageAttachment> = Vec::with_capacity(refs.len());
    for (index, r) in refs.iter().enumerate() {
        let id = r.id();
        if resolved.iter().any(|a| a.upload_id == id) {
            return Err(AttachmentError::Invalid(format!(
                "upload {id} is attached twice"
            )));
        }
        let upload = match store.upload(id).await {
            Ok(u) if u.app_id == app.id && &u.owner == user => u,
            Ok(_) | Err(StoreError::NotFound(_)) => {
                return Err(AttachmentError::NotFound(id.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        if upload.media_type.starts_with("image/") && !model.facts.vision {
            return Err(AttachmentError::Unsupported(format!(
                "model {} does not accept images ({} is {})",
                model.id, upload.name, upload.media_type
            )));
        }
        let into = match r.into_path() {
            Some(raw) => Some(
                DraftPath::parse(raw)
                    .map_err(|error| AttachmentError::Path { index, error })?
                    .into_string(),
            ),
            None => None,
        };
        resolved.push(MessageAttachment {
            upload_id: id,
            name: upload.name,
            media_type: upload.media_type,
            size: upload.size,
            into,
        });
    }
    Ok(resolved)
}

/// The recorded attachments with their bytes, for the engine.
pub async fn load(
    store: &dyn Store,
    recorded: &[MessageAttachment],
) -> Result<Vec<(Attachment, Option<String>)>, StoreError> {
    let mut loaded = Vec::with_capacity(recorded.len());
    for a in recorded {
        let (upload, bytes) = store.upload_bytes(a.upload_id).await?;
        let attachment = Attachment {
            name: upload.name,
            media_type: upload.media_type,
            bytes,
        };
        loaded.push((attachment, a.into.clone()));
    }
    Ok(loaded)
}
