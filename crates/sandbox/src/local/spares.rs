//! Spare sandboxes, made ahead. For each template a sandbox was made for, the controller
//! keeps `wanted` spares holding that template's files (given to the spare's own uid, with
//! its index and state written), so a new chat's sandbox is a spare renamed into place, and
//! the refresh of a draft still equal to its template finds nothing to write. Without one,
//! the directories, the state file and every file are made while the run waits.
//!
//! A spare never runs anything and is handed out once, as it was made; another is made in
//! the background after each take. A spare gives its uid back when a live sandbox needs
//! one and the range is spent. A restarted service adopts leftover spares as ordinary
//! sandboxes and reaps them when they expire.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use draftsmith_core::BlobHash;
use draftsmith_tools::beneath;

use super::sandbox::Sandbox;
use crate::error::SandboxError;
use crate::id::SandboxId;
use crate::workspace;

/// Prefix of spare sandboxes' ids (a chat's is `chat-…`, a build's `release-…`).
const SPARE_PREFIX: &str = "spare-";

/// The spares of one controller.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    /// Spares kept per template; 0 makes none.
    wanted: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Ready spares by template.
    ready: HashMap<String, Vec<Sandbox>>,
    /// Spares being made: their template and the uid each holds.
    making: Vec<(SandboxId, String, Option<u32>)>,
}

/// A spare to make.
#[derive(Debug)]
pub(crate) struct Order {
    id: SandboxId,
    template: String,
    uid: Option<u32>,
}

impl Spares {
    /// Keeps `wanted` spares per template once a sandbox was made for it.
    pub(crate) fn new(wanted: usize) -> Self {
        Self {
            wanted,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The uids spares hold, ready or being made.
    pub(crate) fn uids(&self) -> Vec<u32> {
        let state = self.lock();
        let ready = state.ready.values().flatten().filter_map(Sandbox::uid);
        let making = state.making.iter().filter_map(|(_, _, uid)| *uid);
        ready.chain(making).collect()
    }

    /// How many spares are ready, for tests and metrics.
    pub(crate) fn ready(&self) -> usize {
        self.lock().ready.values().map(Vec::len).sum()
    }

    /// A ready spare of `template`, taken for good.
    pub(crate) fn take(&self, template: &str) -> Option<Sandbox> {
        self.lock().ready.get_mut(template)?.pop()
    }

    /// Any ready spare, taken for good (to free its uid).
    pub(crate) fn take_any(&self) -> Option<Sandbox> {
        self.lock().ready.values_mut().find_map(Vec::pop)
    }

    /// An order for another spare of `template` when fewer than wanted are ready or being
    /// made and the template is known; `allocate` gives it a uid, seeing the uids spares
    /// already hold (an error makes none).
    pub(crate) fn order(
        &self,
        template: &str,
        allocate: impl FnOnce(&[u32]) -> Result<Option<u32>, SandboxError>,
    ) -> Option<Order> {
        draftsmith_templates::find(template)?;
        let held = self.uids();
        let mut state = self.lock();
        let ready = state.ready.get(template).map_or(0, Vec::len);
        let making = state.making.iter().filter(|m| m.1 == template).count();
        if ready + making >= self.wanted {
            return None;
        }
        let uid = allocate(&held).ok()?;
        let id =
            SandboxId::parse(&format!("{SPARE_PREFIX}{}", uuid::Uuid::new_v4().simple())).ok()?;
        state.making.push((id.clone(), template.to_owned(), uid));
        Some(Order {
            id,
            template: template.to_owned(),
            uid,
        })
    }

    /// Makes `order`'s spare under `root` (blocking: run it off the async threads) and
    /// keeps it ready, or forgets the order when it failed (what it made is removed).
    pub(crate) fn fulfil(&self, root: &Path, order: Order, ttl: Duration) {
        let made = make(root, &order, ttl);
        let mut state = self.lock();
        state.making.retain(|(id, _, _)| *id != order.id);
        match made {
            Ok(spare) => state.ready.entry(order.template).or_default().push(spare),
            Err(error) => {
                drop(state);
                tracing::warn!(%error, template = %order.template, "cannot make a spare sandbox");
                let _ = std::fs::remove_dir_all(root.join(order.id.as_str()));
            }
        }
    }
}

/// A new sandbox holding `order`'s template files, owned by its uid, index written.
fn make(root: &Path, order: &Order, ttl: Duration) -> Result<Sandbox, SandboxError> {
    let template = draftsmith_templates::find(&order.template)
        .ok_or_else(|| SandboxError::Invalid(format!("unknown template {}", order.template)))?;
    let mut sandbox = Sandbox::create(root, &order.id, &order.template, ttl, order.uid)?;
    let files: Vec<(String, BlobHash, &[u8])> = template
        .files()
        .into_iter()
        .map(|(path, bytes)| (path, BlobHash::of(bytes), bytes))
        .collect();
    let plan = workspace::RefreshPlan {
        write: files
            .iter()
            .map(|(path, hash, _)| (path.clone(), hash.clone()))
            .collect(),
        remove: Vec::new(),
    };
    let blobs = files
        .iter()
        .map(|(_, hash, bytes)| (hash.clone(), bytes.to_vec()))
        .collect();
    let index = sandbox.files.get_mut();
    workspace::apply(&sandbox.workspace, &plan, &blobs, index, order.uid)?;
    // Where every run seeds the agent contract: made now, so a run writes only the file.
    if let Some((dir, _)) = draftsmith_tools::CONTRACT_FILE.rsplit_once('/') {
        let root_fd =
            beneath::open_root(&sandbox.workspace).map_err(SandboxError::io(&sandbox.workspace))?;
        beneath::make_dirs(root_fd.as_fd(), dir, order.uid)
            .map_err(SandboxError::io(&sandbox.workspace.join(dir)))?;
    }
    index.save()?;
    Ok(sandbox)
}
