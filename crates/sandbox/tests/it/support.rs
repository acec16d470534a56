//! The harness: a data directory per test, a `LocalController` over it, and for the remote
//! deployment the router served on 127.0.0.1:0 with a `RemoteController` calling it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use draftsmith_core::BlobHash;
use draftsmith_sandbox::{
    BlobSource, FileEntry, IsolationMode, Limits, LocalController, RemoteController,
    SandboxController, SandboxError, SandboxId, SpareTemplate, controller_router,
};
use tokio_util::sync::CancellationToken;

/// The shared secret of test servers.
pub const SECRET: &str = "test-secret-0123456789";

/// Which deployment a test talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    Local,
    Remote,
}

/// One test's controller and its data directory.
pub struct Env {
    /// Holds `sandboxes/`, `cache/` and a fake `draftsmith.db`; outside `/tmp` so that hiding
    /// it is the profile's doing, not a side effect of the private `/tmp`.
    pub data: tempfile::TempDir,
    /// The in-process controller (behind the server in the remote case).
    pub local: Arc<LocalController>,
    /// What the test talks to.
    pub ctl: Arc<dyn SandboxController>,
    /// The server's address, in the remote case.
    pub base_url: Option<String>,
    stop_server: CancellationToken,
}

impl Env {
    /// A fresh environment, confined by bubblewrap (required: these tests fail without it).
    pub async fn new(deployment: Deployment) -> Self {
        Self::with_mode(deployment, IsolationMode::Bwrap).await
    }

    /// A fresh environment with the given isolation.
    pub async fn with_mode(deployment: Deployment, mode: IsolationMode) -> Self {
        Self::bounded(deployment, mode, Limits::default()).await
    }

    /// A fresh environment with the given isolation and sandbox limits.
    pub async fn bounded(deployment: Deployment, mode: IsolationMode, limits: Limits) -> Self {
        Self::build(deployment, mode, limits, None).await
    }

    /// A fresh confined environment keeping `count` spares of each of `templates`.
    pub async fn spared(
        deployment: Deployment,
        count: usize,
        templates: Vec<SpareTemplate>,
    ) -> Self {
        let spares = Some((count, templates));
        Self::build(deployment, IsolationMode::Bwrap, Limits::default(), spares).await
    }

    async fn build(
        deployment: Deployment,
        mode: IsolationMode,
        limits: Limits,
        spares: Option<(usize, Vec<SpareTemplate>)>,
    ) -> Self {
        let data = tempfile::Builder::new()
            .prefix("sandbox-it-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        std::fs::write(data.path().join("draftsmith.db"), b"TOP-SECRET-DATABASE").unwrap();
        let local = LocalController::new(
            data.path().join("sandboxes"),
            data.path().join("cache"),
            mode,
        )
        .expect("bubblewrap must work on this machine (install the `bubblewrap` package)")
        .with_hidden_path(data.path().to_path_buf())
        .with_limits(limits)
        .expect("the limits can be enforced here");
        let local = match spares {
            Some((count, templates)) => local.with_spares(count, templates),
            None => local,
        };
        let local = Arc::new(local);
        let stop_server = CancellationToken::new();
        let (ctl, base_url): (Arc<dyn SandboxController>, _) = match deployment {
            Deployment::Local => (local.clone(), None),
            Deployment::Remote => {
                let base = serve(local.clone(), stop_server.clone()).await;
                let remote = RemoteController::new(base.clone(), SECRET, reqwest::Client::new());
                remote.probe().await.unwrap();
                (Arc::new(remote), Some(base))
            }
        };
        Self {
            data,
            local,
            ctl,
            base_url,
            stop_server,
        }
    }

    /// The data directory (canonical).
    pub fn data_dir(&self) -> PathBuf {
        self.data.path().canonicalize().unwrap()
    }

    /// Where `id`'s workspace lives on this host (known even for the remote deployment,
    /// whose server runs in this process).
    pub fn workspace(&self, id: &SandboxId) -> PathBuf {
        self.local.workspace_dir(id).unwrap()
    }

    /// A created sandbox with a fresh id.
    pub async fn sandbox(&self, name: &str, ttl: Duration) -> SandboxId {
        let id = unique_id(name);
        self.ctl.create(&id, "vite-react", ttl).await.unwrap();
        id
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop_server.cancel();
    }
}

async fn serve(local: Arc<LocalController>, stop: CancellationToken) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = controller_router(local, SECRET.to_owned());
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

/// A sandbox id no other test uses.
pub fn unique_id(name: &str) -> SandboxId {
    SandboxId::parse(&format!("{name}-{}", uuid::Uuid::new_v4().simple())).unwrap()
}

/// Blobs in memory, counting fetches so tests see what a refresh needed.
#[derive(Default)]
pub struct MemBlobs {
    map: HashMap<BlobHash, Vec<u8>>,
    fetched: AtomicUsize,
}

impl MemBlobs {
    pub fn fetched(&self) -> usize {
        self.fetched.swap(0, Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl BlobSource for MemBlobs {
    async fn blob(&self, hash: &BlobHash) -> Result<Vec<u8>, SandboxError> {
        self.fetched.fetch_add(1, Ordering::SeqCst);
        self.map
            .get(hash)
            .cloned()
            .ok_or_else(|| SandboxError::Blob {
                hash: hash.clone(),
                message: "not in the test store".into(),
            })
    }
}

/// A manifest of `files` and a blob source holding their contents.
pub fn manifest(files: &[(&str, &[u8])]) -> (Vec<FileEntry>, MemBlobs) {
    let mut blobs = MemBlobs::default();
    let entries = files
        .iter()
        .map(|(path, content)| {
            let sha256 = BlobHash::of(content);
            blobs.map.insert(sha256.clone(), content.to_vec());
            FileEntry {
                path: (*path).to_owned(),
                sha256,
                size: content.len() as i64,
            }
        })
        .collect();
    (entries, blobs)
}

/// A number no other process's command line contains, to find a test's processes.
pub fn marker() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 900_000 + 7_100_000;
    n.to_string()
}

/// Host pids whose command line mentions `marker` (the shell, `sleep`s, and `bwrap`).
pub fn pids_with(marker: &str) -> Vec<u32> {
    draftsmith_process::pids_mentioning(marker)
}

/// Host pids whose working directory is under `dir`.
pub fn pids_in(dir: &Path) -> Vec<u32> {
    draftsmith_process::pids_under(dir)
}

/// Polls `check` until it holds or `limit` passes; returns whether it held.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
