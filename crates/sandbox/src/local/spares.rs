//! Spare sandboxes: per template, a few directories made ahead with everything a new
//! sandbox of that template starts with (its workspace holding the template's files and
//! their index, HOME, the contract of an app with no agent, a state file), so creating a
//! sandbox is a rename instead of some twenty new inodes, the costliest filesystem step of
//! a first run on a disk where many files were recently deleted. A claimed spare is
//! refreshed from the app's draft like any new sandbox (a draft that already differs from
//! its template only costs the difference), and a new one is made in the background. A
//! spare keeps its index in memory with the change notification its maker set on every
//! directory, so a claimed spare's first refresh finds nothing queued and walks nothing.
//!
//! Spares hold only built-in content (a template's files, a constant contract), never a
//! user's files, and a spare goes to
//! exactly one sandbox: it is taken from the pool under its lock and renamed into place.
//! They live beside sandboxes as `.spare-*` (never a valid id); a restarted service
//! deletes the ones it finds and makes fresh ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use draftsmith_core::BlobHash;

use super::LocalController;
use super::sandbox::Sandbox;
use crate::controller::FileEntry;
use crate::error::SandboxError;
use crate::id::SandboxId;
use crate::workspace::{self, FileIndex};

/// Prefix of spare directories; never a valid sandbox id (ids have no dots).
pub(super) const SPARE_PREFIX: &str = ".spare-";

impl LocalController {
    /// The directories of new sandbox `id`: a spare of `template` claimed when one is
    /// ready, else made now.
    pub(super) fn new_sandbox(
        &self,
        id: &SandboxId,
        template: &str,
        ttl: Duration,
        uid: Option<u32>,
    ) -> Result<Sandbox, SandboxError> {
        if let Some(Spare { dir: spare, index }) = self.spares.take(template) {
            match Sandbox::claim(&self.root, id, (&spare, index), template, ttl, uid) {
                Ok(sandbox) => return Ok(sandbox),
                Err(error) => {
                    tracing::warn!(sandbox = %id, %error, "cannot claim a spare sandbox");
                    // Renamed, then failed: what it left is made anew; else the spare goes.
                    let left = if spare.exists() {
                        spare
                    } else {
                        self.root.join(id.as_str())
                    };
                    let _ = std::fs::remove_dir_all(left);
                }
            }
        }
        Sandbox::create(&self.root, id, template, ttl, uid)
    }
}

/// What a new sandbox of one template starts with: the files a new app of it holds.
#[derive(Debug, Clone)]
pub struct SpareTemplate {
    /// The template's id, as sandboxes are created with it.
    pub id: String,
    /// `(relative path, content)` of each file.
    pub files: Vec<(String, Vec<u8>)>,
    /// The agent contract a new app of it is given (none selected), as seeded at
    /// [`draftsmith_tools::CONTRACT_FILE`] before a run: a first run seeding the same
    /// content finds it there and writes nothing. Empty: only its directory is made.
    pub contract: Vec<u8>,
}

/// A template's files as a manifest and the contents it needs, and the contract.
#[derive(Debug)]
struct Seed {
    manifest: Vec<FileEntry>,
    contents: HashMap<BlobHash, Vec<u8>>,
    contract: Vec<u8>,
}

impl Seed {
    fn of(files: Vec<(String, Vec<u8>)>, contract: Vec<u8>) -> Self {
        let mut manifest = Vec::with_capacity(files.len());
        let mut contents = HashMap::with_capacity(files.len());
        for (path, content) in files {
            let sha256 = BlobHash::of(&content);
            manifest.push(FileEntry {
                path,
                size: content.len() as i64,
                sha256: sha256.clone(),
            });
            contents.insert(sha256, content);
        }
        Self {
            manifest,
            contents,
            contract,
        }
    }
}

/// The spares of every template, and the background work that keeps them stocked.
#[derive(Debug, Default)]
pub(super) struct SparePool {
    root: PathBuf,
    /// Spares kept per template.
    count: usize,
    seeds: HashMap<String, Seed>,
    state: Mutex<Stock>,
    /// Set when the controller goes: no more spares are made.
    closed: AtomicBool,
}

/// A spare ready to be claimed: its directory, and its workspace's index as its maker left
/// it, watching every directory.
#[derive(Debug)]
pub(super) struct Spare {
    dir: PathBuf,
    index: FileIndex,
}

#[derive(Debug, Default)]
struct Stock {
    ready: HashMap<String, Vec<Spare>>,
    /// Templates a maker is working on.
    making: Vec<String>,
}

impl Stock {
    /// How many spares of `template` are ready.
    fn count(&self, template: &str) -> usize {
        self.ready.get(template).map_or(0, Vec::len)
    }
}

impl SparePool {
    /// `count` spares of each of `templates`, kept under `root` (none are made yet).
    pub(super) fn new(root: &Path, count: usize, templates: Vec<SpareTemplate>) -> Self {
        Self {
            root: root.to_path_buf(),
            count,
            seeds: templates
                .into_iter()
                .map(|t| (t.id, Seed::of(t.files, t.contract)))
                .collect(),
            state: Mutex::default(),
            closed: AtomicBool::new(false),
        }
    }

    fn stock(&self) -> std::sync::MutexGuard<'_, Stock> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A ready spare of `template`, taken out of the pool, if there is one.
    pub(super) fn take(&self, template: &str) -> Option<Spare> {
        self.stock().ready.get_mut(template)?.pop()
    }

    /// How many spares of `template` are ready.
    pub(super) fn ready(&self, template: &str) -> usize {
        self.stock().count(template)
    }

    /// Starts making spares of `template` on a thread of its own until it has its count
    /// (one maker per template, one spare at a time).
    pub(super) fn top_up(self: &Arc<Self>, template: &str) {
        if self.count == 0 || !self.seeds.contains_key(template) {
            return;
        }
        {
            let mut stock = self.stock();
            let ready = stock.count(template);
            if ready >= self.count || stock.making.iter().any(|t| t == template) {
                return;
            }
            stock.making.push(template.to_owned());
        }
        let pool = self.clone();
        let name = template.to_owned();
        let spawned = std::thread::Builder::new()
            .name("spare-sandboxes".into())
            .spawn(move || {
                idle_priority();
                pool.make_until_stocked(&name);
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start making spare sandboxes");
            self.stock().making.retain(|t| t != template);
        }
    }

    /// Tops up every template.
    pub(super) fn top_up_all(self: &Arc<Self>) {
        let templates: Vec<String> = self.seeds.keys().cloned().collect();
        for template in templates {
            self.top_up(&template);
        }
    }

    /// Stops making spares (the controller is going).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn make_until_stocked(&self, template: &str) {
        loop {
            let wanted = !self.closed.load(Ordering::SeqCst) && self.ready(template) < self.count;
            let made = if wanted { self.make(template) } else { None };
            let mut stock = self.stock();
            match made {
                Some(dir) => stock
                    .ready
                    .entry(template.to_owned())
                    .or_default()
                    .push(dir),
                None => {
                    stock.making.retain(|t| t != template);
                    return;
                }
            }
        }
    }

    /// Makes one spare of `template`; `None` (logged) when it cannot.
    fn make(&self, template: &str) -> Option<Spare> {
        let seed = self.seeds.get(template)?;
        let dir = self
            .root
            .join(format!("{SPARE_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        match fill(&dir, template, seed) {
            Ok(index) => Some(Spare { dir, index }),
            Err(error) => {
                tracing::warn!(%template, %error, "cannot make a spare sandbox");
                let _ = std::fs::remove_dir_all(&dir);
                None
            }
        }
    }

    /// Deletes the spares still in the pool.
    pub(super) fn delete_ready(&self) {
        let ready: Vec<Spare> = self.stock().ready.drain().flat_map(|(_, v)| v).collect();
        for Spare { dir, .. } in ready {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Makes the calling thread run only when a CPU is otherwise idle (`SCHED_IDLE`): spares
/// are made with what runs leave over, never at their expense.
fn idle_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `sched_setscheduler` on the calling thread (pid 0) with a valid parameter;
    // lowering one's own policy needs no privilege, and a failure only leaves it as it was.
    let done = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if done != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "spare maker keeps its priority");
    }
}

/// Lays out a sandbox of `template` at `dir`, its workspace holding the seed's files; its
/// state file comes last. Answers the workspace's index, which has looked at the
/// workspace since it was all written, so its watch is on every directory.
fn fill(dir: &Path, template: &str, seed: &Seed) -> Result<FileIndex, SandboxError> {
    Sandbox::lay_out(dir)?;
    let workspace = dir.join("workspace");
    let mut index = FileIndex::load(dir.join("index.json"));
    let plan = workspace::plan(&workspace, &seed.manifest, &mut index)?;
    workspace::apply(&workspace, &plan, &seed.contents, &mut index, None)?;
    // Where the agent contract is seeded before every run, and what a new app's is.
    let contract = draftsmith_tools::CONTRACT_FILE;
    let seeded = if seed.contract.is_empty() {
        let parent = Path::new(contract).parent().and_then(Path::to_str);
        match parent.filter(|dir| !dir.is_empty()) {
            Some(dir) => draftsmith_tools::ensure_service_dir(&workspace, dir).map(drop),
            None => Ok(()),
        }
    } else {
        draftsmith_tools::write_service_file(&workspace, contract, &seed.contract)
    };
    seeded.map_err(|e| SandboxError::Invalid(format!("spare contract: {}", e.message)))?;
    // The directories the files were written in are watched from here on.
    index.catch_up(&workspace)?;
    index.save()?;
    Sandbox::mark_spare(dir, template)?;
    Ok(index)
}
