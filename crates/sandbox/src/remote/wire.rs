//! The internal API's bodies: typed serde structs, file contents as base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use draftsmith_core::{BlobHash, DraftPath, ErrorCode};
use draftsmith_tools::{CommandOutput, ToolError, ToolOutcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::controller::{Change, ExecRequest, FileEntry};
use crate::error::SandboxError;
use crate::id::SandboxId;
use crate::isolation::Isolation;
use crate::limits::LimitsReport;

/// `POST …/create`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CreateBody {
    pub(crate) template: String,
    pub(crate) ttl_ms: u64,
}

/// Answer to `create`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CreatedBody {
    pub(crate) reused: bool,
    pub(crate) isolation: Isolation,
    /// As in [`InfoBody`], so a client that never probed learns it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) limits: Option<LimitsReport>,
}

/// `GET /internal/sandbox-controller/info`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InfoBody {
    pub(crate) isolation: Isolation,
    /// The identity and limits its sandboxes get (absent from an older controller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) limits: Option<LimitsReport>,
}

/// `POST …/plan`: which blobs would a refresh to `files` need?
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PlanBody {
    pub(crate) files: Vec<FileEntry>,
}

/// Answer to `plan`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MissingBody {
    pub(crate) missing: Vec<BlobHash>,
}

/// `POST …/refresh`: the manifest plus the contents `plan` asked for.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RefreshBody {
    pub(crate) files: Vec<FileEntry>,
    /// sha256 → base64 content.
    pub(crate) blobs: BTreeMap<String, String>,
}

/// `POST …/tool`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ToolBody {
    pub(crate) exec_id: String,
    pub(crate) function_name: String,
    pub(crate) arguments: String,
}

/// `POST …/exec`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ExecBody {
    pub(crate) exec_id: String,
    pub(crate) request: ExecRequest,
}

/// `POST …/cancel`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CancelBody {
    pub(crate) exec_id: String,
}

/// `POST …/snapshot`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SnapshotBody {
    pub(crate) base: Vec<FileEntry>,
}

/// Answer to `snapshot`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChangesBody {
    pub(crate) changes: Vec<WireChange>,
}

/// One change; `content` is base64, absent for a deletion.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireChange {
    pub(crate) path: String,
    pub(crate) content: Option<String>,
}

/// `POST …/seed`: a file the service provides.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SeedBody {
    pub(crate) path: String,
    /// Base64 content.
    pub(crate) content: String,
}

/// `POST …/output`: a build's output directory.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OutputBody {
    pub(crate) dir: String,
    pub(crate) max_bytes: u64,
}

/// The answer to `POST …/output`: each file's path and base64 content.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OutputFiles {
    pub(crate) files: Vec<(String, String)>,
}

/// `POST …/touch`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TouchBody {
    pub(crate) ttl_ms: u64,
}

/// Answer to `dependencies`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LinkedBody {
    pub(crate) linked: bool,
}

/// Answer to `reap`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ReapedBody {
    pub(crate) reaped: Vec<SandboxId>,
}

/// An empty answer (`stop`, `touch`, `cancel`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Empty {}

/// [`CommandOutput`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireOutput {
    pub(crate) exit_code: Option<i32>,
    pub(crate) output: String,
    pub(crate) timed_out: bool,
    pub(crate) cancelled: bool,
    pub(crate) ms: u64,
}

/// [`ToolOutcome`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireOutcome {
    pub(crate) output: serde_json::Value,
    pub(crate) error: Option<WireToolError>,
    pub(crate) paths: Vec<String>,
}

/// [`ToolError`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireToolError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    pub(crate) field: Option<String>,
}

impl From<CommandOutput> for WireOutput {
    fn from(o: CommandOutput) -> Self {
        Self {
            exit_code: o.exit_code,
            output: o.output,
            timed_out: o.timed_out,
            cancelled: o.cancelled,
            ms: o.ms,
        }
    }
}

impl From<WireOutput> for CommandOutput {
    fn from(o: WireOutput) -> Self {
        Self {
            exit_code: o.exit_code,
            output: o.output,
            timed_out: o.timed_out,
            cancelled: o.cancelled,
            ms: o.ms,
        }
    }
}

impl From<ToolOutcome> for WireOutcome {
    fn from(o: ToolOutcome) -> Self {
        Self {
            output: o.output,
            error: o.error.map(|e| WireToolError {
                code: e.code,
                message: e.message,
                field: e.field,
            }),
            paths: o.paths,
        }
    }
}

impl From<WireOutcome> for ToolOutcome {
    fn from(o: WireOutcome) -> Self {
        Self {
            output: o.output,
            error: o.error.map(|e| ToolError {
                code: e.code,
                message: e.message,
                field: e.field,
            }),
            paths: o.paths,
        }
    }
}

impl From<Change> for WireChange {
    fn from(c: Change) -> Self {
        Self {
            path: c.path.into_string(),
            content: c.content.map(|b| STANDARD.encode(b)),
        }
    }
}

impl WireChange {
    /// Decodes the content.
    pub(crate) fn into_change(self) -> Result<Change, SandboxError> {
        let content = match self.content {
            Some(text) => Some(decode(&text)?),
            None => None,
        };
        let path = DraftPath::parse(&self.path).map_err(|e| SandboxError::PathBlocked {
            path: self.path.clone(),
            reason: e.reason().into(),
        })?;
        Ok(Change { path, content })
    }
}

/// Base64 for file contents.
pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes base64 file contents.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, SandboxError> {
    STANDARD
        .decode(text)
        .map_err(|e| SandboxError::Invalid(format!("content is not base64: {e}")))
}

/// A duration in whole milliseconds.
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
