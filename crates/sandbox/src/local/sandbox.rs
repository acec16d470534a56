//! One sandbox's on-disk layout and lifetime: `<root>/<id>/{workspace,home,index.json,
//! state.json}`. The state file lets a restarted service find and reap leftovers.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::devserver::Supervisor;
use crate::error::SandboxError;
use crate::id::SandboxId;
use crate::process::ProcessGroups;
use crate::workspace::FileIndex;

/// What the state file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    template: String,
    ttl_ms: u64,
    expires_at_ms: u64,
    /// The sandbox's own uid, when it has one.
    #[serde(default)]
    uid: Option<u32>,
}

/// A live sandbox of the in-process controller.
#[derive(Debug)]
pub(crate) struct Sandbox {
    pub(crate) id: SandboxId,
    pub(crate) dir: PathBuf,
    pub(crate) workspace: PathBuf,
    pub(crate) home: PathBuf,
    state: Mutex<State>,
    /// Cancelled when the sandbox stops: every running command ends.
    pub(crate) stop: CancellationToken,
    /// Process groups of running commands.
    pub(crate) groups: ProcessGroups,
    /// The file index; holding it also serialises refresh, snapshot and dependency linking.
    pub(crate) files: tokio::sync::Mutex<FileIndex>,
    /// Its dev server, once something asked for it.
    pub(crate) dev: Mutex<Option<Supervisor>>,
}

impl Sandbox {
    /// Creates the directories of a new sandbox.
    pub(crate) fn create(
        root: &Path,
        id: &SandboxId,
        template: &str,
        ttl: Duration,
        uid: Option<u32>,
    ) -> Result<Self, SandboxError> {
        let sandbox = Self::at(
            root,
            id,
            State {
                template: template.to_owned(),
                ttl_ms: millis(ttl),
                expires_at_ms: deadline_ms(ttl),
                uid,
            },
        );
        sandbox.ensure_dirs()?;
        sandbox.save()?;
        Ok(sandbox)
    }

    /// Creates the workspace and HOME if missing (also when reusing: someone may have
    /// cleaned the disk under a live sandbox).
    pub(crate) fn ensure_dirs(&self) -> Result<(), SandboxError> {
        for dir in [&self.workspace, &self.home] {
            std::fs::create_dir_all(dir).map_err(SandboxError::io(dir))?;
            if let Some(uid) = self.uid() {
                std::os::unix::fs::lchown(dir, Some(uid), Some(uid))
                    .map_err(SandboxError::io(dir))?;
            }
        }
        Ok(())
    }

    /// The sandbox's own uid, if it has one.
    pub(crate) fn uid(&self) -> Option<u32> {
        self.state.lock().ok().and_then(|s| s.uid)
    }

    /// Gives an adopted sandbox a uid (its state's one was missing or outside the range).
    pub(crate) fn set_uid(&self, uid: u32) -> Result<(), SandboxError> {
        if let Ok(mut state) = self.state.lock() {
            state.uid = Some(uid);
        }
        self.save()
    }

    /// A sandbox left by an earlier process; without a readable state it counts as expired.
    pub(crate) fn load(root: &Path, id: &SandboxId) -> Self {
        let file = root.join(id.as_str()).join("state.json");
        let state = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(State {
                template: String::new(),
                ttl_ms: 0,
                expires_at_ms: 0,
                uid: None,
            });
        Self::at(root, id, state)
    }

    fn at(root: &Path, id: &SandboxId, state: State) -> Self {
        let dir = root.join(id.as_str());
        Self {
            id: id.clone(),
            workspace: dir.join("workspace"),
            home: dir.join("home"),
            files: tokio::sync::Mutex::new(FileIndex::load(dir.join("index.json"))),
            dir,
            state: Mutex::new(state),
            stop: CancellationToken::new(),
            groups: ProcessGroups::default(),
            dev: Mutex::new(None),
        }
    }

    /// Kills its dev server's process tree at once, for good.
    pub(crate) fn stop_dev_server(&self) {
        if let Some(dev) = self.dev.lock().ok().and_then(|mut slot| slot.take()) {
            dev.stop_now();
        }
    }

    /// Whether the TTL has passed.
    pub(crate) fn is_expired(&self, now: SystemTime) -> bool {
        let now = now.duration_since(UNIX_EPOCH).map(millis).unwrap_or(0);
        self.state
            .lock()
            .map(|s| s.expires_at_ms <= now)
            .unwrap_or(true)
    }

    /// Keeps it alive for `ttl` from now (and remembers `ttl` for later use).
    pub(crate) fn renew(&self, template: Option<&str>, ttl: Duration) -> Result<(), SandboxError> {
        if let Ok(mut state) = self.state.lock() {
            if let Some(template) = template {
                template.clone_into(&mut state.template);
            }
            state.ttl_ms = millis(ttl);
            state.expires_at_ms = deadline_ms(ttl);
        }
        self.save()
    }

    /// Pushes the deadline to at least one TTL from now: a sandbox in use does not expire.
    pub(crate) fn in_use(&self) {
        if let Ok(mut state) = self.state.lock() {
            let deadline = deadline_ms(Duration::from_millis(state.ttl_ms));
            state.expires_at_ms = state.expires_at_ms.max(deadline);
        }
    }

    fn save(&self) -> Result<(), SandboxError> {
        let state = self
            .state
            .lock()
            .map(|s| s.clone())
            .map_err(|_| SandboxError::Invalid("sandbox state poisoned".into()))?;
        let bytes = serde_json::to_vec(&state)
            .map_err(|e| SandboxError::Invalid(format!("sandbox state: {e}")))?;
        let file = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.tmp");
        std::fs::write(&tmp, bytes).map_err(SandboxError::io(&tmp))?;
        std::fs::rename(&tmp, &file).map_err(SandboxError::io(&file))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn deadline_ms(ttl: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0);
    now.saturating_add(millis(ttl))
}
