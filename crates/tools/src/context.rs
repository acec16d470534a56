//! What every tool call runs against: the workspace, the run's cancellation, the bounds, and
//! the command runner (local by default, a confined one from the sandbox crate).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::command::{CommandRunner, LocalCommandRunner};

/// The workspace and services a tool call may use; cheap to clone per call.
#[derive(Clone)]
pub struct ToolContext {
    /// The root every tool path is relative to; nothing outside it is ever written.
    pub workspace: PathBuf,
    /// Cancelled when the run is cancelled; long tools stop early and commands are killed.
    pub cancel: CancellationToken,
    /// Bounds on sizes, counts and durations.
    pub limits: ToolLimits,
    /// Runs `run_command`; the seam a sandbox uses to confine processes.
    pub commands: Arc<dyn CommandRunner>,
}

impl ToolContext {
    /// A context with default limits and the local command runner, for tests and trusted use.
    pub fn local(workspace: impl Into<PathBuf>) -> Self {
        Self {
            workspace: workspace.into(),
            cancel: CancellationToken::new(),
            limits: ToolLimits::default(),
            commands: Arc::new(LocalCommandRunner),
        }
    }
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("workspace", &self.workspace)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Bounds that keep a tool's cost and its answer to the model small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolLimits {
    /// Largest file a tool writes (and the largest file `search` and `apply_patch` read).
    pub max_file_bytes: usize,
    /// Largest slice of a file `read` returns in one call.
    pub max_read_bytes: usize,
    /// Largest command output returned (its tail is kept).
    pub max_output_bytes: usize,
    /// Most matches `search` returns.
    pub max_search_matches: usize,
    /// Most entries `list` and `glob` return.
    pub max_list_entries: usize,
    /// Longest a command may run; `timeout_ms` can only shorten it.
    pub command_timeout: Duration,
}

impl Default for ToolLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 2 * 1024 * 1024,
            max_read_bytes: 64 * 1024,
            max_output_bytes: 32 * 1024,
            max_search_matches: 200,
            max_list_entries: 500,
            command_timeout: Duration::from_secs(300),
        }
    }
}
