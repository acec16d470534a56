//! The one interface both deployments implement: the runner talks to a sandbox only through
//! [`SandboxController`], so in-process and remote sandboxes behave alike.

use std::path::PathBuf;
use std::time::Duration;

use draftsmith_core::BlobHash;
use draftsmith_tools::{CommandOutput, ToolOutcome};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::devserver::{DevServerSpec, DevServerStatus};
use crate::error::SandboxError;
use crate::id::SandboxId;
use crate::isolation::Isolation;
use crate::limits::LimitsReport;

/// One file of a draft revision's manifest, what the workspace must hold at `path`: the
/// draft's own [`DraftFile`](draftsmith_core::api::DraftFile), so a manifest is handed to a
/// sandbox as it is.
pub use draftsmith_core::api::DraftFile as FileEntry;

/// Where file contents come from during a refresh, so only missing blobs are ever fetched.
#[async_trait::async_trait]
pub trait BlobSource: Send + Sync {
    /// The bytes whose SHA-256 is `hash`.
    async fn blob(&self, hash: &BlobHash) -> Result<Vec<u8>, SandboxError>;
    /// The bytes of each of `hashes`, in order; a source that can read several in one go
    /// (one query instead of one per file) says so here.
    async fn blobs(&self, hashes: &[BlobHash]) -> Result<Vec<Vec<u8>>, SandboxError> {
        let mut found = Vec::with_capacity(hashes.len());
        for hash in hashes {
            found.push(self.blob(hash).await?);
        }
        Ok(found)
    }
}

/// One difference between the workspace and the manifest it was compared with: the
/// draft's own [`FileChange`](draftsmith_core::FileChange), its path checked against the
/// path policy once, here.
pub use draftsmith_core::FileChange as Change;

/// What `create` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// A live sandbox of that id existed and was kept warm.
    pub reused: bool,
}

/// What `refresh` did, so callers and benchmarks can see that only differences were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refreshed {
    /// Files written because they were missing or different.
    pub written: usize,
    /// Files removed because the manifest no longer holds them.
    pub removed: usize,
}

/// A verification or development command to run in the workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Shell text, run with `sh -c` in the workspace.
    pub command: String,
    /// Longest it may run before everything it started is killed.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// Most bytes of combined output kept (the tail).
    pub max_output_bytes: usize,
    /// Extra environment variables.
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

/// The sandbox controller of SPEC §6: owns workspaces, their processes and their lifetimes.
#[async_trait::async_trait]
pub trait SandboxController: Send + Sync {
    /// The confinement in force, reported in capabilities.
    fn isolation(&self) -> Isolation;

    /// The identity and resource limits in force and how each is enforced; `None` when
    /// this side cannot tell.
    fn limits(&self) -> Option<LimitsReport> {
        None
    }

    /// What the sandboxes' network reaches (`proxy`, `none`, `host`) and the hosts the
    /// egress proxy allows, reported in capabilities; `unknown` when not known here.
    fn egress(&self) -> (String, Vec<String>) {
        ("unknown".into(), Vec::new())
    }

    /// Provisions `id` or keeps a live one warm (refreshing its TTL); reaps expired ones first.
    async fn create(
        &self,
        id: &SandboxId,
        template: &str,
        ttl: Duration,
    ) -> Result<Created, SandboxError>;

    /// The blobs a refresh to `files` would need, so a remote caller uploads only those.
    async fn missing_blobs(
        &self,
        id: &SandboxId,
        files: &[FileEntry],
    ) -> Result<Vec<BlobHash>, SandboxError>;

    /// Makes the workspace hold exactly `files`, writing only what differs; dependency and
    /// generated directories are never touched.
    async fn refresh(
        &self,
        id: &SandboxId,
        files: &[FileEntry],
        blobs: &dyn BlobSource,
    ) -> Result<Refreshed, SandboxError>;

    /// Links the template's shared dependency cache into the workspace (installing it once
    /// per lockfile); `false` when the workspace has no lockfile.
    async fn prepare_dependencies(&self, id: &SandboxId) -> Result<bool, SandboxError>;

    /// Runs one native tool against the workspace, its commands confined like `exec`.
    async fn run_tool(
        &self,
        id: &SandboxId,
        function_name: &str,
        arguments: &str,
        cancel: CancellationToken,
    ) -> Result<ToolOutcome, SandboxError>;

    /// Runs a command in the workspace, confined; cancel or timeout kills all it started.
    async fn exec(
        &self,
        id: &SandboxId,
        request: ExecRequest,
        cancel: CancellationToken,
    ) -> Result<CommandOutput, SandboxError>;

    /// The workspace's changes against `base`, pruning generated directories.
    async fn snapshot(
        &self,
        id: &SandboxId,
        base: &[FileEntry],
    ) -> Result<Vec<Change>, SandboxError>;

    /// Writes a file the service itself provides (the agent contract) into the workspace,
    /// never through a symlink the agent planted; generated directories such as `.cache/`
    /// are allowed, unlike for the agent's own writes.
    async fn seed_file(
        &self,
        id: &SandboxId,
        path: &str,
        content: &[u8],
    ) -> Result<(), SandboxError>;

    /// The files a build wrote under `dir` (relative to the workspace, e.g. `dist`), by their
    /// path under it; symlinks are skipped and more than `max_bytes` in total is refused.
    async fn read_output(
        &self,
        id: &SandboxId,
        dir: &str,
        max_bytes: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, SandboxError>;

    /// The sandbox's dev server (the live preview): started with `spec` unless it runs,
    /// then awaited until it answers or fails; without `spec` only its status (`None`
    /// when it has none). `None` as well where this controller cannot serve one to this
    /// host (a remote controller).
    async fn dev_server(
        &self,
        id: &SandboxId,
        spec: Option<&DevServerSpec>,
    ) -> Result<Option<DevServerStatus>, SandboxError> {
        let _ = (id, spec);
        Ok(None)
    }

    /// Keeps the sandbox alive for `ttl` from now.
    async fn touch(&self, id: &SandboxId, ttl: Duration) -> Result<(), SandboxError>;

    /// Kills every process the sandbox started and removes its directory; absent is fine.
    async fn stop(&self, id: &SandboxId) -> Result<(), SandboxError>;

    /// Stops every sandbox whose TTL has passed; returns their ids.
    async fn reap_expired(&self) -> Result<Vec<SandboxId>, SandboxError>;

    /// The workspace on this host, for seeding files; `None` when the sandbox is remote.
    fn workspace_dir(&self, id: &SandboxId) -> Option<PathBuf>;

    /// Sandboxes kept now (working or warm), for the metrics; `None` when this side cannot
    /// tell without asking (a remote controller).
    fn sandbox_count(&self) -> Option<usize> {
        None
    }
}

/// Durations as integer milliseconds on the wire.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
