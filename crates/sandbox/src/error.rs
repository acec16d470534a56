//! The one error type of the sandbox crate; each variant says what a caller can do about
//! it, and [`SandboxError::to_body`] is the single mapping onto the wire envelope.

use std::path::{Path, PathBuf};

use draftsmith_core::{BlobHash, ErrorBody, ErrorCode};

/// Why a sandbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The id is not `[a-zA-Z0-9_-]{1,80}`; fix the caller, do not retry.
    #[error("invalid sandbox id {0:?}")]
    InvalidId(String),
    /// No such sandbox (never created, stopped or reaped); create it again.
    #[error("sandbox {0} does not exist")]
    NotFound(String),
    /// A manifest or request named a path the policy refuses; do not retry.
    #[error("path {path:?} is refused: {reason}")]
    PathBlocked {
        /// The path as given.
        path: String,
        /// Why, in words.
        reason: String,
    },
    /// The blob source could not produce a blob (or produced other bytes); retry after the
    /// store recovers.
    #[error("blob {hash} is unavailable: {message}")]
    Blob {
        /// Which blob.
        hash: BlobHash,
        /// Why.
        message: String,
    },
    /// The file system refused; usually not retryable (disk full, permissions).
    #[error("sandbox I/O on {}: {source}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Bubblewrap was required but does not work here; fix the host or choose `none`.
    #[error("isolation unavailable: {0}")]
    Isolation(String),
    /// A process could not be started.
    #[error("cannot start a process: {0}")]
    Process(String),
    /// Installing the template's dependencies failed; the output's tail says why.
    #[error("installing dependencies failed: {0}")]
    Dependencies(String),
    /// The workspace outgrew the sandbox's disk limit, so it is not synced; delete files
    /// (the agent can) and sync again.
    #[error(
        "the workspace holds {bytes} bytes, more than the sandbox's disk limit of {limit_bytes} bytes"
    )]
    WorkspaceTooLarge {
        /// What the syncable files add up to.
        bytes: u64,
        /// `[sandbox.limits] disk_mib`, in bytes.
        limit_bytes: u64,
    },
    /// A request body did not validate; fix the caller.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The shared secret was missing or wrong; fix the configuration.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The remote controller could not be reached or answered garbage; retryable.
    #[error("sandbox controller unreachable: {0}")]
    Transport(String),
    /// The remote controller answered with an error envelope this side does not map.
    #[error("sandbox controller answered {status} {code}: {message}")]
    Remote {
        /// HTTP status.
        status: u16,
        /// The envelope's code.
        code: ErrorCode,
        /// The envelope's message.
        message: String,
    },
}

impl SandboxError {
    /// An `Io` error at `path`, for `map_err`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
        move |source| SandboxError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether trying the same call again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Blob { .. } | Self::Transport(_))
            || matches!(self, Self::Remote { status, .. } if *status >= 500)
    }

    /// The stable code this error carries on the wire.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidId(_) | Self::Invalid(_) => ErrorCode::ValidationFailed,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::PathBlocked { .. } => ErrorCode::CodingAgentPathBlocked,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::WorkspaceTooLarge { .. } => ErrorCode::CodingAgentWorkspaceTooLarge,
            Self::Remote { code, .. } => *code,
            Self::Blob { .. }
            | Self::Io { .. }
            | Self::Isolation(_)
            | Self::Process(_)
            | Self::Dependencies(_)
            | Self::Transport(_) => ErrorCode::CodingAgentSandboxFailed,
        }
    }

    /// The SPEC §2 envelope for this error, with the details a client needs to rebuild it.
    pub fn to_body(&self) -> ErrorBody {
        let mut body = ErrorBody::new(self.code(), self.to_string());
        let details = &mut body.error.details;
        match self {
            Self::NotFound(id) => {
                details.insert("sandbox_id".into(), id.clone().into());
            }
            Self::PathBlocked { path, reason } => {
                details.insert("path".into(), path.clone().into());
                details.insert("reason".into(), reason.clone().into());
            }
            Self::Blob { hash, .. } => {
                details.insert("missing_blob".into(), hash.as_str().into());
            }
            Self::WorkspaceTooLarge { bytes, limit_bytes } => {
                details.insert("bytes".into(), (*bytes).into());
                details.insert("limit_bytes".into(), (*limit_bytes).into());
            }
            _ => {}
        }
        body
    }

    /// Rebuilds an error from a remote controller's envelope, so both deployments fail alike.
    pub fn from_body(status: u16, body: ErrorBody) -> Self {
        let detail = |key: &str| {
            body.error
                .details
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        match body.error.code {
            ErrorCode::NotFound => Self::NotFound(detail("sandbox_id").unwrap_or_default()),
            ErrorCode::Unauthorized => Self::Unauthorized(body.error.message),
            ErrorCode::CodingAgentWorkspaceTooLarge => {
                let number = |key: &str| {
                    body.error
                        .details
                        .get(key)
                        .and_then(|v| v.as_u64())
                        .unwrap_or(0)
                };
                Self::WorkspaceTooLarge {
                    bytes: number("bytes"),
                    limit_bytes: number("limit_bytes"),
                }
            }
            ErrorCode::CodingAgentPathBlocked => Self::PathBlocked {
                path: detail("path").unwrap_or_default(),
                reason: detail("reason").unwrap_or(body.error.message),
            },
            _ => match detail("missing_blob").and_then(|h| BlobHash::parse(&h)) {
                Some(hash) => Self::Blob {
                    hash,
                    message: body.error.message,
                },
                None => Self::Remote {
                    status,
                    code: body.error.code,
                    message: body.error.message,
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let errors = [
            SandboxError::NotFound("chat-1".into()),
            SandboxError::PathBlocked {
                path: "../x".into(),
                reason: "parent_dir".into(),
            },
            SandboxError::Blob {
                hash: BlobHash::of(b"x"),
                message: "gone".into(),
            },
            SandboxError::WorkspaceTooLarge {
                bytes: 3 << 20,
                limit_bytes: 2 << 20,
            },
        ];
        for error in errors {
            let body = error.to_body();
            let status = error.code().http_status();
            let back = SandboxError::from_body(status, body);
            assert_eq!(back.code(), error.code());
            assert_eq!(back.to_body().error.details, error.to_body().error.details);
        }
        assert!(SandboxError::Transport("x".into()).is_retryable());
        assert!(!SandboxError::InvalidId("x".into()).is_retryable());
    }
}
