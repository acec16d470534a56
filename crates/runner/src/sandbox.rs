//! Glue between a run and its sandbox controller: blobs come from the store, native tools
//! and verification commands run inside the sandbox, confined.

use std::sync::Arc;

use async_trait::async_trait;
use draftsmith_core::{BlobHash, ErrorCode};
use draftsmith_engine::ToolHost;
use draftsmith_sandbox::{BlobSource, ExecRequest, SandboxController, SandboxError, SandboxId};
use draftsmith_store::{Store, StoreError};
use draftsmith_tools::{CommandOutput, CommandRequest, CommandRunner, ToolError, ToolOutcome};
use tokio_util::sync::CancellationToken;

/// Blobs for a sandbox refresh, read from the store.
pub struct StoreBlobs(pub Arc<dyn Store>);

#[async_trait]
impl BlobSource for StoreBlobs {
    async fn blob(&self, hash: &BlobHash) -> Result<Vec<u8>, SandboxError> {
        self.0.blob(hash).await.map_err(|e| SandboxError::Blob {
            hash: hash.clone(),
            message: e.to_string(),
        })
    }

    /// One query for the lot: a fresh sandbox needs every file of the draft.
    async fn blobs(&self, hashes: &[BlobHash]) -> Result<Vec<Vec<u8>>, SandboxError> {
        let Some(first) = hashes.first() else {
            return Ok(Vec::new());
        };
        // A failed read names the first blob of the lot, as reading one by one would.
        let mut found = self
            .0
            .blobs()
            .get_many(hashes)
            .await
            .map_err(|e| SandboxError::Blob {
                hash: first.clone(),
                message: e.to_string(),
            })?;
        hashes
            .iter()
            .map(|hash| {
                found.remove(hash).ok_or_else(|| SandboxError::Blob {
                    hash: hash.clone(),
                    message: StoreError::NotFound("blob").to_string(),
                })
            })
            .collect()
    }
}

/// Whether a run's sandbox is ready for its tools: `None` while it is being made, then
/// whether it was.
pub type Readiness = tokio::sync::watch::Receiver<Option<bool>>;

/// Native tools executed by the sandbox controller, each once the sandbox is ready.
pub struct SandboxTools {
    /// The controller.
    pub controller: Arc<dyn SandboxController>,
    /// The run's sandbox.
    pub id: SandboxId,
    /// Whether it is ready.
    pub ready: Readiness,
}

impl SandboxTools {
    /// Waits until the sandbox is made: `false` when making it failed.
    async fn ready(&self) -> bool {
        let mut ready = self.ready.clone();
        matches!(
            ready.wait_for(Option::is_some).await.map(|r| *r),
            Ok(Some(true))
        )
    }
}

#[async_trait]
impl ToolHost for SandboxTools {
    async fn run_tool(
        &self,
        function_name: &str,
        arguments: &str,
        cancel: CancellationToken,
    ) -> ToolOutcome {
        let ready = tokio::select! {
            ready = self.ready() => ready,
            () = cancel.cancelled() => false,
        };
        if !ready {
            let error = ToolError {
                code: ErrorCode::CodingAgentSandboxFailed,
                message: "the run's sandbox could not be prepared".to_owned(),
                field: None,
            };
            return ToolOutcome::failure(error, Vec::new());
        }
        match self
            .controller
            .run_tool(&self.id, function_name, arguments, cancel)
            .await
        {
            Ok(outcome) => outcome,
            Err(err) => {
                let error = ToolError {
                    code: ErrorCode::CodingAgentSandboxFailed,
                    message: err.to_string(),
                    field: None,
                };
                ToolOutcome::failure(error, Vec::new())
            }
        }
    }
}

/// Verification commands executed in the sandbox.
pub struct SandboxCommands {
    /// The controller.
    pub controller: Arc<dyn SandboxController>,
    /// The run's sandbox.
    pub id: SandboxId,
}

#[async_trait]
impl CommandRunner for SandboxCommands {
    async fn run(
        &self,
        request: CommandRequest,
        cancel: CancellationToken,
    ) -> Result<CommandOutput, ToolError> {
        let exec = ExecRequest {
            command: request.command,
            timeout: request.timeout,
            max_output_bytes: request.max_output_bytes,
            env: request.env,
        };
        self.controller
            .exec(&self.id, exec, cancel)
            .await
            .map_err(|e| ToolError {
                code: ErrorCode::CodingAgentSandboxFailed,
                message: e.to_string(),
                field: None,
            })
    }
}
