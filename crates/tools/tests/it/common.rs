//! Shared helpers: a workspace with a sibling "outside" directory, tree snapshots, and a
//! one-line way to call a tool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use draftsmith_tools::{ToolContext, ToolOutcome, run_tool};
use serde_json::Value;
use tempfile::TempDir;

/// A temporary directory holding `ws/` (the workspace) and `outside/` (must never change).
pub struct Sandbox {
    pub dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ws")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside/sub")).unwrap();
        std::fs::write(dir.path().join("outside/secret.txt"), "secret\n").unwrap();
        std::fs::write(dir.path().join("outside/sub/deep.txt"), "deep\n").unwrap();
        Self { dir }
    }

    pub fn ws(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    pub fn ctx(&self) -> ToolContext {
        ToolContext::local(self.ws())
    }

    /// Writes a workspace file, creating parents.
    pub fn put(&self, rel: &str, content: &str) {
        let path = self.ws().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn get(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.ws().join(rel)).ok()
    }
}

/// Calls a tool on a fresh current-thread runtime.
pub fn call(ctx: &ToolContext, name: &str, args: &str) -> ToolOutcome {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run_tool(ctx, name, args))
}

/// Calls a tool with a JSON value as arguments.
pub fn call_json(ctx: &ToolContext, name: &str, args: Value) -> ToolOutcome {
    call(ctx, name, &args.to_string())
}

/// Every entry below `root`: files with their bytes, symlinks with their targets, directories.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            out.insert(rel, format!("link -> {}", target.display()));
        } else if meta.is_dir() {
            out.insert(format!("{rel}/"), String::new());
            walk(root, &path, out);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.insert(rel, format!("{:?}", String::from_utf8_lossy(&bytes)));
        }
    }
}

/// The error code of a failed outcome, as on the wire.
pub fn code(outcome: &ToolOutcome) -> &str {
    outcome.output["error"]["code"].as_str().unwrap_or("")
}
