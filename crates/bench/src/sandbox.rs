//! Issue: materialising sandboxes and syncing them back. Cold materialisation of a
//! 2,000-file draft against `cp -r` of the same tree, a warm refresh with one changed file
//! against the cold one, and the end-of-run snapshot of a workspace holding a 30,000-file
//! `node_modules` against `git status --porcelain` on the same tree with a `.gitignore`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use draftsmith_core::BlobHash;
use draftsmith_sandbox::{
    BlobSource, FileEntry, IsolationMode, LocalController, SandboxController, SandboxError,
    SandboxId,
};

use crate::report::{line, wait_for_quiet};

const FILES: usize = 2_000;
const NODE_MODULES: usize = 30_000;

/// Blobs kept in memory, so the measurement is the sandbox's work alone.
struct Blobs(std::collections::HashMap<BlobHash, Vec<u8>>);

#[async_trait]
impl BlobSource for Blobs {
    async fn blob(&self, hash: &BlobHash) -> Result<Vec<u8>, SandboxError> {
        self.0.get(hash).cloned().ok_or_else(|| SandboxError::Blob {
            hash: hash.clone(),
            message: "missing".into(),
        })
    }
}

fn draft(version: usize) -> (Vec<FileEntry>, Blobs) {
    let mut entries = Vec::new();
    let mut blobs = std::collections::HashMap::new();
    for i in 0..FILES {
        let mut content =
            format!("// file {i} v{}\n", if i == 7 { version } else { 0 }).into_bytes();
        content.resize(800, b'x');
        let hash = BlobHash::of(&content);
        entries.push(FileEntry {
            path: format!("src/d{:02}/f{i:04}.js", i % 40),
            sha256: hash.clone(),
            size: content.len() as i64,
        });
        blobs.insert(hash, content);
    }
    (entries, Blobs(blobs))
}

pub async fn run() -> anyhow::Result<()> {
    println!("== sandbox: materialise, refresh and sync ==");
    wait_for_quiet().await;
    let dir = tempfile::tempdir()?;
    let controller = Arc::new(LocalController::new(
        dir.path().join("sandboxes"),
        dir.path().join("cache"),
        IsolationMode::Auto,
    )?);
    let cold = materialise(&controller, dir.path()).await?;
    let id = SandboxId::parse("bench-cold-0")?;
    wait_for_quiet().await;
    refresh(&controller, &id, cold).await?;
    snapshot(&controller, &id).await
}

/// Cold materialisation of the draft against `cp -r` of the same tree; the median cold time.
async fn materialise(
    controller: &LocalController,
    dir: &std::path::Path,
) -> anyhow::Result<Duration> {
    let (files, blobs) = draft(0);

    let mut cold = Vec::new();
    let mut copies = Vec::new();
    for round in 0..3 {
        let id = SandboxId::parse(&format!("bench-cold-{round}"))?;
        let clock = Instant::now();
        controller
            .create(&id, "static", Duration::from_secs(600))
            .await?;
        controller.refresh(&id, &files, &blobs).await?;
        cold.push(clock.elapsed());
        let source = controller.workspace_dir(&id).context("a local workspace")?;
        let target = dir.join(format!("copy-{round}"));
        let clock = Instant::now();
        run_cmd(Command::new("cp").arg("-r").arg(&source).arg(&target))?;
        copies.push(clock.elapsed());
    }
    cold.sort();
    copies.sort();
    line(
        &format!("cold materialisation, {FILES} files"),
        cold[1],
        &format!("cp -r of the same {FILES} files"),
        copies[1],
    );

    Ok(cold[1])
}

/// A warm refresh with one changed file against the cold materialisation.
async fn refresh(
    controller: &LocalController,
    id: &SandboxId,
    cold: Duration,
) -> anyhow::Result<()> {
    let mut warm = Vec::new();
    for version in 1..=5 {
        let (changed, changed_blobs) = draft(version);
        let clock = Instant::now();
        controller
            .create(id, "static", Duration::from_secs(600))
            .await?;
        controller.refresh(id, &changed, &changed_blobs).await?;
        warm.push(clock.elapsed());
    }
    warm.sort();
    line(
        "warm refresh, 1 file changed",
        warm[2],
        "cold materialisation",
        cold,
    );

    Ok(())
}

/// The end-of-run snapshot of a workspace with a large `node_modules` against `git status`.
async fn snapshot(controller: &LocalController, id: &SandboxId) -> anyhow::Result<()> {
    // A workspace with a large node_modules and one edited file.
    let workspace = controller.workspace_dir(id).context("a local workspace")?;
    for i in 0..NODE_MODULES {
        let file = workspace.join(format!("node_modules/pkg{:03}/lib/m{i:05}.js", i % 300));
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, b"module.exports = 1;\n")?;
    }
    std::fs::write(
        workspace.join("src/d00/f0000.js"),
        b"// edited by the agent\n",
    )?;
    std::fs::write(workspace.join(".gitignore"), b"node_modules/\ndist/\n")?;
    let (current, _) = draft(5);
    let mut snapshots = Vec::new();
    for _ in 0..5 {
        let clock = Instant::now();
        let changes = controller.snapshot(id, &current).await?;
        snapshots.push(clock.elapsed());
        if changes.iter().any(|c| c.path.starts_with("node_modules")) {
            bail!("the snapshot walked into node_modules");
        }
    }
    snapshots.sort();
    run_cmd(git_in(&workspace).args(["init", "-q"]))?;
    run_cmd(git_in(&workspace).args(["add", "-A"]))?;
    run_cmd(git_in(&workspace).args([
        "-c",
        "user.name=b",
        "-c",
        "user.email=b@l",
        "commit",
        "-qm",
        "base",
    ]))?;
    std::fs::write(workspace.join("src/d00/f0000.js"), b"// edited again\n")?;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let clock = Instant::now();
        run_cmd(git_in(&workspace).args(["status", "--porcelain"]))?;
        statuses.push(clock.elapsed());
    }
    statuses.sort();
    line(
        &format!("end-of-run snapshot, {NODE_MODULES}-file node_modules"),
        snapshots[2],
        "git status --porcelain (.gitignore)",
        statuses[2],
    );
    Ok(())
}

fn run_cmd(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().context("running a baseline command")?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// `git` working in `workspace`, which a service running as root has given to the
/// sandbox's own uid: git refuses a repository of another owner unless told it is safe.
fn git_in(workspace: &Path) -> Command {
    let mut git = Command::new("git");
    git.args(["-c", "safe.directory=*"]).current_dir(workspace);
    git
}
