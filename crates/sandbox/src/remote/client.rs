//! [`RemoteController`]: the [`SandboxController`] of a `draftsmith sandbox-controller`
//! reached over HTTP. Refresh uploads only the blobs the controller lacks; a cancelled
//! command is cancelled by id on the controller, which answers with what it killed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use draftsmith_core::{BlobHash, ErrorBody};
use draftsmith_tools::{CommandOutput, ToolOutcome};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use super::PREFIX;
use super::wire::{
    CancelBody, ChangesBody, CreateBody, CreatedBody, Empty, ExecBody, InfoBody, LinkedBody,
    MissingBody, OutputBody, OutputFiles, PlanBody, ReapedBody, RefreshBody, SeedBody,
    SnapshotBody, ToolBody, TouchBody, WireOutcome, WireOutput, decode, encode, millis,
};
use crate::controller::{
    BlobSource, Change, Created, ExecRequest, FileEntry, Refreshed, SandboxController,
};
use crate::error::SandboxError;
use crate::id::SandboxId;
use crate::isolation::Isolation;
use crate::limits::LimitsReport;

/// How often a refresh re-plans when the workspace moved between plan and upload.
const REFRESH_ATTEMPTS: usize = 3;
/// How long to wait for a cancelled command's answer before giving up on it.
const CANCEL_GRACE: Duration = Duration::from_secs(30);

/// Isolation is unknown until the controller says; report none (the cautious answer) until then.
const UNKNOWN: u8 = 0;
const BWRAP: u8 = 1;
const NONE: u8 = 2;

/// A sandbox controller in another process or host, spoken to over the internal API.
#[derive(Debug)]
pub struct RemoteController {
    base: String,
    secret: String,
    http: reqwest::Client,
    isolation: AtomicU8,
    /// What the last probe said about identity and limits.
    limits: std::sync::Mutex<Option<LimitsReport>>,
}

impl RemoteController {
    /// A client of the controller at `base_url` (scheme, host and port), authenticating
    /// with the shared `secret`.
    pub fn new(
        base_url: impl Into<String>,
        secret: impl Into<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            base: base_url.into().trim_end_matches('/').to_owned(),
            secret: secret.into(),
            http,
            isolation: AtomicU8::new(UNKNOWN),
            limits: std::sync::Mutex::new(None),
        }
    }

    /// Asks the controller which isolation it enforces (and remembers it for `isolation()`);
    /// also a readiness and credentials check at start.
    pub async fn probe(&self) -> Result<Isolation, SandboxError> {
        let url = format!("{}{PREFIX}/info", self.base);
        let request = self.http.get(url).bearer_auth(&self.secret);
        let info: InfoBody = self.send(request).await?;
        self.remember(info.isolation);
        if let Ok(mut limits) = self.limits.lock() {
            *limits = info.limits;
        }
        Ok(info.isolation)
    }

    fn remember(&self, isolation: Isolation) {
        let v = match isolation {
            Isolation::Bwrap => BWRAP,
            Isolation::None => NONE,
        };
        self.isolation.store(v, Ordering::Relaxed);
    }

    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        id: Option<&SandboxId>,
        op: &str,
        body: &B,
    ) -> Result<R, SandboxError> {
        let url = match id {
            Some(id) => format!("{}{PREFIX}/sessions/{id}/{op}", self.base),
            None => format!("{}{PREFIX}/{op}", self.base),
        };
        let request = self.http.post(url).bearer_auth(&self.secret).json(body);
        self.send(request).await
    }

    async fn send<R: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<R, SandboxError> {
        let response = request
            .send()
            .await
            .map_err(|e| SandboxError::Transport(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| SandboxError::Transport(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| SandboxError::Transport(format!("unexpected answer: {e}")));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(SandboxError::from_body(status.as_u16(), body)),
            Err(_) => Err(SandboxError::Transport(format!(
                "answered {status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ))),
        }
    }

    /// Posts a command, and on `cancel` tells the controller to kill it by id, then waits
    /// for the controller's own account of the cancelled command.
    async fn cancellable<B: Serialize, R: DeserializeOwned>(
        &self,
        id: &SandboxId,
        op: &str,
        exec_id: &str,
        body: &B,
        cancel: CancellationToken,
    ) -> Result<R, SandboxError> {
        let call = self.post(Some(id), op, body);
        tokio::pin!(call);
        tokio::select! {
            answer = &mut call => answer,
            () = cancel.cancelled() => {
                let body = CancelBody { exec_id: exec_id.to_owned() };
                if let Err(e) = self.post::<_, Empty>(Some(id), "cancel", &body).await {
                    tracing::warn!(error = %e, "cannot cancel a remote command; dropping its request");
                }
                tokio::time::timeout(CANCEL_GRACE, call).await.map_err(|_| {
                    SandboxError::Transport("the controller did not confirm the cancel".into())
                })?
            }
        }
    }
}

#[async_trait::async_trait]
impl SandboxController for RemoteController {
    fn limits(&self) -> Option<LimitsReport> {
        self.limits.lock().ok().and_then(|l| l.clone())
    }

    fn isolation(&self) -> Isolation {
        match self.isolation.load(Ordering::Relaxed) {
            BWRAP => Isolation::Bwrap,
            _ => Isolation::None,
        }
    }

    async fn create(
        &self,
        id: &SandboxId,
        template: &str,
        ttl: Duration,
    ) -> Result<Created, SandboxError> {
        let body = CreateBody {
            template: template.to_owned(),
            ttl_ms: millis(ttl),
        };
        let created: CreatedBody = self.post(Some(id), "create", &body).await?;
        self.remember(created.isolation);
        if let (Ok(mut limits), Some(report)) = (self.limits.lock(), created.limits.clone()) {
            *limits = Some(report);
        }
        Ok(Created {
            reused: created.reused,
        })
    }

    async fn missing_blobs(
        &self,
        id: &SandboxId,
        files: &[FileEntry],
    ) -> Result<Vec<BlobHash>, SandboxError> {
        let body = PlanBody {
            files: files.to_vec(),
        };
        let answer: MissingBody = self.post(Some(id), "plan", &body).await?;
        Ok(answer.missing)
    }

    async fn refresh(
        &self,
        id: &SandboxId,
        files: &[FileEntry],
        blobs: &dyn BlobSource,
    ) -> Result<Refreshed, SandboxError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let missing = self.missing_blobs(id, files).await?;
            let fetched = blobs.blobs(&missing).await?;
            let upload: BTreeMap<String, String> = missing
                .iter()
                .zip(fetched)
                .map(|(hash, bytes)| (hash.as_str().to_owned(), encode(&bytes)))
                .collect();
            let body = RefreshBody {
                files: files.to_vec(),
                blobs: upload,
            };
            match self.post(Some(id), "refresh", &body).await {
                // The workspace changed between plan and refresh: plan again.
                Err(SandboxError::Blob { .. }) if attempt < REFRESH_ATTEMPTS => continue,
                other => return other,
            }
        }
    }

    async fn prepare_dependencies(&self, id: &SandboxId) -> Result<bool, SandboxError> {
        let answer: LinkedBody = self.post(Some(id), "dependencies", &Empty {}).await?;
        Ok(answer.linked)
    }

    async fn run_tool(
        &self,
        id: &SandboxId,
        function_name: &str,
        arguments: &str,
        cancel: CancellationToken,
    ) -> Result<ToolOutcome, SandboxError> {
        let exec_id = uuid::Uuid::new_v4().to_string();
        let body = ToolBody {
            exec_id: exec_id.clone(),
            function_name: function_name.to_owned(),
            arguments: arguments.to_owned(),
        };
        let answer: WireOutcome = self
            .cancellable(id, "tool", &exec_id, &body, cancel)
            .await?;
        Ok(answer.into())
    }

    async fn exec(
        &self,
        id: &SandboxId,
        request: ExecRequest,
        cancel: CancellationToken,
    ) -> Result<CommandOutput, SandboxError> {
        let exec_id = uuid::Uuid::new_v4().to_string();
        let body = ExecBody {
            exec_id: exec_id.clone(),
            request,
        };
        let answer: WireOutput = self
            .cancellable(id, "exec", &exec_id, &body, cancel)
            .await?;
        Ok(answer.into())
    }

    async fn snapshot(
        &self,
        id: &SandboxId,
        base: &[FileEntry],
    ) -> Result<Vec<Change>, SandboxError> {
        let body = SnapshotBody {
            base: base.to_vec(),
        };
        let answer: ChangesBody = self.post(Some(id), "snapshot", &body).await?;
        answer
            .changes
            .into_iter()
            .map(|c| c.into_change())
            .collect()
    }

    async fn seed_file(
        &self,
        id: &SandboxId,
        path: &str,
        content: &[u8],
    ) -> Result<(), SandboxError> {
        let body = SeedBody {
            path: path.to_owned(),
            content: encode(content),
        };
        let _: Empty = self.post(Some(id), "seed", &body).await?;
        Ok(())
    }

    async fn read_output(
        &self,
        id: &SandboxId,
        dir: &str,
        max_bytes: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, SandboxError> {
        let body = OutputBody {
            dir: dir.to_owned(),
            max_bytes,
        };
        let answer: OutputFiles = self.post(Some(id), "output", &body).await?;
        answer
            .files
            .into_iter()
            .map(|(path, content)| Ok((path, decode(&content)?)))
            .collect()
    }

    async fn touch(&self, id: &SandboxId, ttl: Duration) -> Result<(), SandboxError> {
        let body = TouchBody {
            ttl_ms: millis(ttl),
        };
        let _: Empty = self.post(Some(id), "touch", &body).await?;
        Ok(())
    }

    async fn stop(&self, id: &SandboxId) -> Result<(), SandboxError> {
        let _: Empty = self.post(Some(id), "stop", &Empty {}).await?;
        Ok(())
    }

    async fn reap_expired(&self) -> Result<Vec<SandboxId>, SandboxError> {
        let answer: ReapedBody = self.post(None, "reap", &Empty {}).await?;
        Ok(answer.reaped)
    }

    fn workspace_dir(&self, _id: &SandboxId) -> Option<PathBuf> {
        None
    }
}
