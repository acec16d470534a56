//! One sandbox's on-disk layout and lifetime: `<root>/<id>/{workspace,home,index.json,
//! state.json}`. The state file lets a restarted service find and reap leftovers; a
//! renewal that only moves the deadline by less than half a TTL is not written (a restart
//! may then reap a warm sandbox that much early, which costs a fresh fill, nothing else).
//! The state file is rewritten in place, like the index: a write cut short leaves JSON
//! that does not parse, and a sandbox without a readable state counts as expired (reaped,
//! refilled on next use), so an atomic replace would buy nothing but a new inode.

use std::os::unix::fs::MetadataExt;
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The state as last written to (or read from) its file.
    on_disk: Mutex<Option<State>>,
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
        let files = FileIndex::load(root.join(id.as_str()).join("index.json"));
        Self::made(root, id, template, ttl, uid, files)
    }

    /// [`Sandbox::create`] with its workspace's index `files`.
    fn made(
        root: &Path,
        id: &SandboxId,
        template: &str,
        ttl: Duration,
        uid: Option<u32>,
        files: FileIndex,
    ) -> Result<Self, SandboxError> {
        let state = State {
            template: template.to_owned(),
            ttl_ms: millis(ttl),
            expires_at_ms: deadline_ms(ttl),
            uid,
        };
        let sandbox = Self::at(root, id, state, None, files);
        sandbox.ensure_dirs()?;
        sandbox.save()?;
        Ok(sandbox)
    }

    /// Lays out the directories of a sandbox that belongs to nobody yet (a spare) at `dir`.
    pub(crate) fn lay_out(dir: &Path) -> Result<(), SandboxError> {
        for sub in ["workspace", "home"] {
            let sub = dir.join(sub);
            std::fs::create_dir_all(&sub).map_err(SandboxError::io(&sub))?;
        }
        Ok(())
    }

    /// Writes the state file of a spare of `template` at `dir`, one that has already
    /// expired; written last, it marks the spare complete.
    pub(crate) fn mark_spare(dir: &Path, template: &str) -> Result<(), SandboxError> {
        let state = State {
            template: template.to_owned(),
            ttl_ms: 0,
            expires_at_ms: 0,
            uid: None,
        };
        write_state(dir, &state)
    }

    /// Makes the spare at `spare` (see [`Sandbox::mark_spare`]) sandbox `id`: renamed into
    /// place, then given its TTL and its uid as [`Sandbox::create`] does (its files become
    /// the uid's as for any sandbox, when its first process starts), with `index`, its
    /// workspace's index as the spare's maker left it. `Err` leaves the spare where it
    /// was when the rename failed.
    pub(crate) fn claim(
        root: &Path,
        id: &SandboxId,
        (spare, index): (&Path, FileIndex),
        template: &str,
        ttl: Duration,
        uid: Option<u32>,
    ) -> Result<Self, SandboxError> {
        let dir = root.join(id.as_str());
        std::fs::rename(spare, &dir).map_err(SandboxError::io(&dir))?;
        let index = index.moved_to(dir.join("index.json"));
        let mut sandbox = Self::made(root, id, template, ttl, uid, index)?;
        // What its watch queued since the maker's last look was the service's own doing
        // (the contract seeded, the workspace given to the uid just now).
        sandbox.files.get_mut().settle();
        Ok(sandbox)
    }

    /// Creates the workspace and HOME if missing (also when reusing: someone may have
    /// cleaned the disk under a live sandbox).
    pub(crate) fn ensure_dirs(&self) -> Result<(), SandboxError> {
        for dir in [&self.workspace, &self.home] {
            std::fs::create_dir_all(dir).map_err(SandboxError::io(dir))?;
            let Some(uid) = self.uid() else { continue };
            // Only when it is not the sandbox's yet: a change of owner is an event to the
            // workspace's watch, which would make the next refresh walk.
            let owned =
                std::fs::symlink_metadata(dir).is_ok_and(|m| m.uid() == uid && m.gid() == uid);
            if !owned {
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
        let read: Option<State> = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let state = read.clone().unwrap_or(State {
            template: String::new(),
            ttl_ms: 0,
            expires_at_ms: 0,
            uid: None,
        });
        let files = FileIndex::load(root.join(id.as_str()).join("index.json"));
        Self::at(root, id, state, read, files)
    }

    fn at(
        root: &Path,
        id: &SandboxId,
        state: State,
        on_disk: Option<State>,
        files: FileIndex,
    ) -> Self {
        let dir = root.join(id.as_str());
        Self {
            id: id.clone(),
            workspace: dir.join("workspace"),
            home: dir.join("home"),
            files: tokio::sync::Mutex::new(files),
            dir,
            state: Mutex::new(state),
            on_disk: Mutex::new(on_disk),
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

    /// Keeps it alive for `ttl` from now (and remembers `ttl` for later use). The file is
    /// rewritten only when more than the deadline changed, or the deadline moved by half
    /// a TTL or more since it was written.
    pub(crate) fn renew(&self, template: Option<&str>, ttl: Duration) -> Result<(), SandboxError> {
        let renewed = {
            let mut state = self.lock_state()?;
            if let Some(template) = template {
                template.clone_into(&mut state.template);
            }
            state.ttl_ms = millis(ttl);
            state.expires_at_ms = deadline_ms(ttl);
            state.clone()
        };
        let written = self.on_disk.lock().ok().and_then(|d| d.clone());
        let current = written.is_some_and(|on_disk| {
            let moved = renewed.expires_at_ms.saturating_sub(on_disk.expires_at_ms);
            let same = State {
                expires_at_ms: renewed.expires_at_ms,
                ..on_disk
            } == renewed;
            same && moved < renewed.ttl_ms / 2
        });
        if current { Ok(()) } else { self.save() }
    }

    /// Pushes the deadline to at least one TTL from now: a sandbox in use does not expire.
    pub(crate) fn in_use(&self) {
        if let Ok(mut state) = self.state.lock() {
            let deadline = deadline_ms(Duration::from_millis(state.ttl_ms));
            state.expires_at_ms = state.expires_at_ms.max(deadline);
        }
    }

    fn lock_state(&self) -> Result<std::sync::MutexGuard<'_, State>, SandboxError> {
        self.state
            .lock()
            .map_err(|_| SandboxError::Invalid("sandbox state poisoned".into()))
    }

    fn save(&self) -> Result<(), SandboxError> {
        let state = self.lock_state()?.clone();
        write_state(&self.dir, &state)?;
        if let Ok(mut on_disk) = self.on_disk.lock() {
            *on_disk = Some(state);
        }
        Ok(())
    }
}

/// Writes `state` as `dir`'s state file, in place (see the module's note).
fn write_state(dir: &Path, state: &State) -> Result<(), SandboxError> {
    let bytes = serde_json::to_vec(state)
        .map_err(|e| SandboxError::Invalid(format!("sandbox state: {e}")))?;
    let file = dir.join("state.json");
    std::fs::write(&file, bytes).map_err(SandboxError::io(&file))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn on_disk(root: &Path, id: &SandboxId) -> State {
        let bytes = std::fs::read(root.join(id.as_str()).join("state.json")).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn a_renewal_is_written_only_when_more_than_a_little_of_the_deadline_changed() {
        let dir = tempfile::tempdir().unwrap();
        let id = SandboxId::parse("chat-1").unwrap();
        let ttl = Duration::from_secs(600);
        let sandbox = Sandbox::create(dir.path(), &id, "static", ttl, None).unwrap();
        let first = on_disk(dir.path(), &id);
        std::thread::sleep(Duration::from_millis(5));
        // Only the deadline moved, by far less than half a TTL: the file stays.
        sandbox.renew(Some("static"), ttl).unwrap();
        sandbox.renew(None, ttl).unwrap();
        assert_eq!(on_disk(dir.path(), &id), first);
        // A new template (or TTL) is written at once.
        sandbox.renew(Some("vite-react"), ttl).unwrap();
        let written = on_disk(dir.path(), &id);
        assert_eq!(written.template, "vite-react");
        assert!(written.expires_at_ms > first.expires_at_ms);
        // After a restart the file read counts as written.
        let adopted = Sandbox::load(dir.path(), &id);
        adopted.renew(None, ttl).unwrap();
        assert_eq!(on_disk(dir.path(), &id), written);
        // A deadline moved by half a TTL or more is written.
        let short = Duration::from_millis(40);
        adopted.renew(None, short).unwrap();
        let before = on_disk(dir.path(), &id);
        assert_eq!(before.ttl_ms, 40);
        std::thread::sleep(Duration::from_millis(25));
        adopted.renew(None, short).unwrap();
        assert!(on_disk(dir.path(), &id).expires_at_ms >= before.expires_at_ms + 20);
    }

    #[test]
    fn reusing_a_sandbox_leaves_its_next_refresh_nothing_to_look_at() {
        let dir = tempfile::tempdir().unwrap();
        let id = SandboxId::parse("chat-1").unwrap();
        let ttl = Duration::from_secs(600);
        let sandbox = Sandbox::create(dir.path(), &id, "static", ttl, Some(61_234)).unwrap();
        std::fs::write(sandbox.workspace.join("a.txt"), b"a").unwrap();
        let mut files = sandbox.files.try_lock().unwrap();
        files.scan(&sandbox.workspace, false).unwrap();
        sandbox.ensure_dirs().unwrap();
        files.catch_up(&sandbox.workspace).unwrap();
        assert_eq!(files.last_look(), crate::workspace::Looked::Noticed(0));
    }
}
