//! Any path either is refused or resolves inside the workspace, through a workspace that holds
//! symlinks leading out, to `/`, into `.git`, and nowhere.
#![no_main]

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::OnceLock;

use draftsmith_core::DraftPath;
use draftsmith_tools::{resolve_for_entry, resolve_for_read, resolve_for_write};
use libfuzzer_sys::fuzz_target;

fn workspace() -> &'static (PathBuf, PathBuf) {
    static WS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    WS.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("draftsmith-fuzz-{}", std::process::id()));
        let ws = base.join("ws");
        let _ = std::fs::create_dir_all(ws.join("src/.git"));
        let _ = std::fs::create_dir_all(base.join("outside"));
        let _ = symlink(base.join("outside"), ws.join("out"));
        let _ = symlink("/", ws.join("root"));
        let _ = symlink("src/.git", ws.join("g"));
        let _ = symlink("missing", ws.join("dangling"));
        let _ = symlink("src", ws.join("alias"));
        let canonical = ws.canonicalize().unwrap_or(ws.clone());
        (ws, canonical)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let (ws, canonical) = workspace();
    if let Ok(path) = DraftPath::parse(raw) {
        let s = path.as_str();
        assert!(!s.starts_with('/') && !s.split('/').any(|c| c == ".." || c == "." || c.is_empty()));
    }
    for resolved in [resolve_for_read(ws, raw), resolve_for_write(ws, raw), resolve_for_entry(ws, raw)]
        .into_iter()
        .flatten()
    {
        assert!(resolved.starts_with(canonical), "{raw:?} resolved to {resolved:?}");
        assert!(resolved != *canonical, "{raw:?} resolved to the root itself");
    }
});
