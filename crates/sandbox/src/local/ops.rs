//! [`SandboxController`] for [`LocalController`]: each operation finds the live sandbox,
//! does its file work on the blocking pool and its commands through the confined runner.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use draftsmith_core::BlobHash;
use draftsmith_tools::{
    CommandOutput, CommandRequest, CommandRunner, NoCommands, ToolContext, ToolOutcome,
};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::sandbox::Sandbox;
use super::{LocalController, delete_trash};
use crate::controller::{
    BlobSource, Change, Created, ExecRequest, FileEntry, Refreshed, SandboxController,
};
use crate::deps;
use crate::devserver::{DevServerSpec, DevServerStatus};
use crate::error::SandboxError;
use crate::id::SandboxId;
use crate::identity::hand_over;
use crate::isolation::Isolation;
use crate::workspace::{self, FileIndex};

#[async_trait::async_trait]
impl SandboxController for LocalController {
    fn isolation(&self) -> Isolation {
        self.isolation_in_force()
    }

    fn limits(&self) -> Option<crate::limits::LimitsReport> {
        Some(self.limits_report())
    }

    fn egress(&self) -> (String, Vec<String>) {
        (self.egress_in_force().into(), self.egress_allowed())
    }

    async fn create(
        &self,
        id: &SandboxId,
        template: &str,
        ttl: Duration,
    ) -> Result<Created, SandboxError> {
        let mut map = self.sandboxes.lock().await;
        let reaped = self.take_expired(&mut map);
        let created = match map.get(id) {
            Some(sandbox) => {
                sandbox.ensure_dirs()?;
                sandbox.renew(Some(template), ttl)?;
                Created { reused: true }
            }
            None => {
                let uid = match self.uids {
                    Some(range) => {
                        let used: Vec<u32> = map.values().filter_map(|s| s.uid()).collect();
                        Some(range.allocate(&used)?)
                    }
                    None => None,
                };
                let sandbox = self.new_sandbox(id, template, ttl, uid)?;
                map.insert(id.clone(), Arc::new(sandbox));
                Created { reused: false }
            }
        };
        drop(map);
        if !created.reused {
            self.spares.top_up(template);
        }
        log_reaped(&reaped);
        delete_trash(reaped.into_iter().map(|(_, t)| t).collect()).await;
        Ok(created)
    }

    async fn missing_blobs(
        &self,
        id: &SandboxId,
        files: &[FileEntry],
    ) -> Result<Vec<BlobHash>, SandboxError> {
        let sandbox = self.get(id).await?;
        let mut index = sandbox.files.lock().await;
        Ok(compare(&sandbox, &mut index, files).await?.blobs())
    }

    async fn refresh(
        &self,
        id: &SandboxId,
        files: &[FileEntry],
        blobs: &dyn BlobSource,
    ) -> Result<Refreshed, SandboxError> {
        let sandbox = self.get(id).await?;
        let mut index = sandbox.files.lock().await;
        let uid = sandbox.uid();
        let plan = compare(&sandbox, &mut index, files).await?;
        if plan.write.is_empty() && plan.remove.is_empty() {
            return Ok(Refreshed {
                written: 0,
                removed: 0,
            });
        }
        // The index is saved with the run's snapshot, not here, off the way to the run's
        // start: lost to a crash in between, it costs one more hashing of the files the
        // refresh wrote (a stamp never vouches for a file written since).
        let mut contents = HashMap::new();
        let needed = plan.blobs();
        let fetched = blobs.blobs(&needed).await?;
        for (hash, bytes) in needed.into_iter().zip(fetched) {
            if BlobHash::of(&bytes) != hash {
                return Err(SandboxError::Blob {
                    hash,
                    message: "the content does not match its hash".into(),
                });
            }
            contents.insert(hash, bytes);
        }
        with_index(&mut index, &sandbox, move |root, index| {
            workspace::apply(&root, &plan, &contents, index, uid)
        })
        .await
    }

    async fn prepare_dependencies(&self, id: &SandboxId) -> Result<bool, SandboxError> {
        let sandbox = self.get(id).await?;
        let _files = sandbox.files.lock().await;
        let (Some(package), Some(lock)) = (
            regular_file(sandbox.workspace.join("package.json")),
            regular_file(sandbox.workspace.join("package-lock.json")),
        ) else {
            return Ok(false);
        };
        let sha = BlobHash::of(&lock);
        if deps::is_linked(&sandbox.workspace, &sha) {
            return Ok(true);
        }
        let modules = self.deps.ensure(&sha, &package, &lock).await?;
        let (workspace, uid) = (sandbox.workspace.clone(), sandbox.uid());
        let started = std::time::Instant::now();
        let files = tokio::task::spawn_blocking(move || {
            let files = deps::link_into(&modules, &workspace, &sha)?;
            // The tree's directories become the sandbox's; the shared files stay nobody's.
            if let Some(uid) = uid {
                hand_over(&workspace.join("node_modules"), uid, true)?;
            }
            Ok::<_, SandboxError>(files)
        })
        .await
        .map_err(|e| SandboxError::Dependencies(e.to_string()))??;
        tracing::debug!(sandbox = %id, files, ms = %started.elapsed().as_millis(), "linked dependencies");
        Ok(true)
    }

    async fn run_tool(
        &self,
        id: &SandboxId,
        function_name: &str,
        arguments: &str,
        cancel: CancellationToken,
    ) -> Result<ToolOutcome, SandboxError> {
        let sandbox = self.get(id).await?;
        let (cancel, _link) = linked(&sandbox.stop, cancel);
        // A file tool (most of a run's calls) needs no cgroup or network set up.
        let commands: Arc<dyn CommandRunner> = if draftsmith_tools::runs_commands(function_name) {
            self.runner(&sandbox)?
        } else {
            Arc::new(NoCommands)
        };
        let ctx = ToolContext {
            workspace: sandbox.workspace.clone(),
            cancel,
            limits: self.limits.clone(),
            commands,
        };
        Ok(draftsmith_tools::run_tool(&ctx, function_name, arguments).await)
    }

    async fn exec(
        &self,
        id: &SandboxId,
        request: ExecRequest,
        cancel: CancellationToken,
    ) -> Result<CommandOutput, SandboxError> {
        let sandbox = self.get(id).await?;
        let (cancel, _link) = linked(&sandbox.stop, cancel);
        let request = CommandRequest {
            command: request.command,
            cwd: sandbox.workspace.clone(),
            timeout: request.timeout,
            max_output_bytes: request.max_output_bytes,
            env: request.env,
        };
        self.runner(&sandbox)?
            .run(request, cancel)
            .await
            .map_err(|e| SandboxError::Process(e.message))
    }

    async fn snapshot(
        &self,
        id: &SandboxId,
        base: &[FileEntry],
    ) -> Result<Vec<Change>, SandboxError> {
        let sandbox = self.get(id).await?;
        let mut index = sandbox.files.lock().await;
        let base = base.to_vec();
        let max_bytes = self.enforcement.limits.disk_bytes();
        with_index(&mut index, &sandbox, move |root, index| {
            let changes = workspace::snapshot(&root, &base, index, max_bytes)?;
            index.save()?;
            Ok(changes)
        })
        .await
    }

    async fn seed_file(
        &self,
        id: &SandboxId,
        path: &str,
        content: &[u8],
    ) -> Result<(), SandboxError> {
        let sandbox = self.get(id).await?;
        let (workspace, uid) = (sandbox.workspace.clone(), sandbox.uid());
        let (relative, content) = (path.to_owned(), content.to_vec());
        let written = tokio::task::spawn_blocking(move || {
            let written = draftsmith_tools::write_service_file(&workspace, &relative, &content);
            if let (Ok(()), Some(uid)) = (&written, uid)
                && let Err(e) = draftsmith_tools::beneath::give_path(&workspace, &relative, uid)
            {
                tracing::warn!(error = %e, "cannot hand a seeded file over to its sandbox");
            }
            written
        })
        .await
        .map_err(|e| SandboxError::Process(e.to_string()))?;
        written.map_err(|e| SandboxError::PathBlocked {
            path: path.to_owned(),
            reason: e.message,
        })
    }

    async fn read_output(
        &self,
        id: &SandboxId,
        dir: &str,
        max_bytes: u64,
    ) -> Result<Vec<(String, Vec<u8>)>, SandboxError> {
        let workspace = self.get(id).await?.workspace.clone();
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || workspace::output::read(&workspace, &dir, max_bytes))
            .await
            .map_err(|e| SandboxError::Process(e.to_string()))?
    }

    async fn dev_server(
        &self,
        id: &SandboxId,
        spec: Option<&DevServerSpec>,
    ) -> Result<Option<DevServerStatus>, SandboxError> {
        self.dev_server_of(id, spec).await
    }

    async fn touch(&self, id: &SandboxId, ttl: Duration) -> Result<(), SandboxError> {
        self.get(id).await?.renew(None, ttl)
    }

    async fn stop(&self, id: &SandboxId) -> Result<(), SandboxError> {
        let mut map = self.sandboxes.lock().await;
        let trash = map.remove(id).map(|sandbox| self.terminate(&sandbox));
        drop(map);
        delete_trash(trash.into_iter().collect()).await;
        Ok(())
    }

    async fn reap_expired(&self) -> Result<Vec<SandboxId>, SandboxError> {
        let mut map = self.sandboxes.lock().await;
        let reaped = self.take_expired(&mut map);
        drop(map);
        log_reaped(&reaped);
        let ids = reaped.iter().map(|(id, _)| id.clone()).collect();
        delete_trash(reaped.into_iter().map(|(_, t)| t).collect()).await;
        let (cache, idle) = (self.deps.dir().to_path_buf(), self.dependency_idle);
        let _ =
            tokio::task::spawn_blocking(move || crate::deps::collect_unused(&cache, idle)).await;
        Ok(ids)
    }

    fn workspace_dir(&self, id: &SandboxId) -> Option<PathBuf> {
        Some(self.root.join(id.as_str()).join("workspace"))
    }

    fn sandbox_count(&self) -> Option<usize> {
        // A scrape never waits on a sandbox being created; busy reads as unknown.
        self.sandboxes.try_lock().ok().map(|map| map.len())
    }
}

/// Files of a manifest compared between two yields to the runtime (about 0.2 ms).
const COMPARED_AT_ONCE: usize = 4_096;

/// What a refresh of the sandbox's workspace to `files` would do: the changes since the
/// last look are looked at on the blocking pool, then the manifest is compared here, a
/// part at a time: a hash lookup per file, where copying a 2,000-file manifest over to the
/// blocking pool and checking every path there took 1-2 ms.
async fn compare(
    sandbox: &Sandbox,
    index: &mut FileIndex,
    files: &[FileEntry],
) -> Result<workspace::RefreshPlan, SandboxError> {
    // Nothing queued on the watch: nothing to look at, and no trip to the blocking pool.
    if !index.untouched() {
        with_index(index, sandbox, |root, index| index.catch_up(&root)).await?;
    }
    let looked = index.last_look();
    let mut comparison = workspace::Comparison::new(index);
    for (i, part) in files.chunks(COMPARED_AT_ONCE).enumerate() {
        if i > 0 {
            tokio::task::yield_now().await;
        }
        comparison.add(part)?;
    }
    let plan = comparison.finish();
    tracing::debug!(
        ?looked,
        write = plan.write.len(),
        remove = plan.remove.len(),
        "refresh planned"
    );
    Ok(plan)
}

fn log_reaped(reaped: &[(SandboxId, super::Trash)]) {
    for (id, _) in reaped {
        tracing::info!(sandbox = %id, "reaped an expired sandbox");
    }
}

/// Runs `work` on the blocking pool with the index moved in and back out.
async fn with_index<T, F>(
    index: &mut FileIndex,
    sandbox: &Sandbox,
    work: F,
) -> Result<T, SandboxError>
where
    T: Send + 'static,
    F: FnOnce(PathBuf, &mut FileIndex) -> Result<T, SandboxError> + Send + 'static,
{
    let mut taken = std::mem::take(index);
    let root = sandbox.workspace.clone();
    let (back, result) = tokio::task::spawn_blocking(move || {
        let result = work(root, &mut taken);
        (taken, result)
    })
    .await
    .map_err(|e| SandboxError::Invalid(format!("workspace task failed: {e}")))?;
    *index = back;
    result
}

/// A token cancelled by the caller's `cancel` or by the sandbox stopping; the guard ends
/// the watcher when the operation is over.
fn linked(stop: &CancellationToken, cancel: CancellationToken) -> (CancellationToken, DropGuard) {
    let op = stop.child_token();
    let done = CancellationToken::new();
    let (watch_op, watch_done) = (op.clone(), done.clone());
    tokio::spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => watch_op.cancel(),
            () = watch_done.cancelled() => {}
            () = watch_op.cancelled() => {}
        }
    });
    (op, done.drop_guard())
}

/// The bytes of `path` if it is a regular file (never through a symlink).
fn regular_file(path: PathBuf) -> Option<Vec<u8>> {
    let meta = path.symlink_metadata().ok()?;
    meta.is_file().then(|| std::fs::read(&path).ok()).flatten()
}
