//! Files: refresh writes only differences, snapshot prunes generated directories.

use std::time::{Duration, Instant};

use draftsmith_sandbox::SandboxError;
use pretty_assertions::assert_eq;
use tokio_util::sync::CancellationToken;

use super::HOUR;
use crate::support::{Deployment, Env, manifest};

pub(super) async fn refresh_writes_only_what_differs(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("refresh", HOUR).await;
    let contents: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| {
            (
                format!("src/f{i}.js"),
                format!("export const n = {i};\n").into_bytes(),
            )
        })
        .collect();
    let files: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    let (v1, blobs) = manifest(&files);
    let done = env.ctl.refresh(&id, &v1, &blobs).await.unwrap();
    assert_eq!((done.written, done.removed, blobs.fetched()), (50, 0, 50));

    let done = env.ctl.refresh(&id, &v1, &blobs).await.unwrap();
    assert_eq!((done.written, done.removed, blobs.fetched()), (0, 0, 0));

    let ws = env.workspace(&id);
    for dir in ["node_modules/react", ".git", "dist"] {
        std::fs::create_dir_all(ws.join(dir)).unwrap();
        std::fs::write(ws.join(dir).join("keep"), b"x").unwrap();
    }
    let mut files = files.clone();
    files[0].1 = b"changed";
    files.pop();
    files.push(("index.html", b"<html></html>"));
    let (v2, blobs) = manifest(&files);
    let done = env.ctl.refresh(&id, &v2, &blobs).await.unwrap();
    assert_eq!((done.written, done.removed, blobs.fetched()), (2, 1, 2));
    assert_eq!(std::fs::read(ws.join("src/f0.js")).unwrap(), b"changed");
    assert!(!ws.join("src/f49.js").exists());
    for dir in ["node_modules/react", ".git", "dist"] {
        assert!(ws.join(dir).join("keep").exists(), "{dir} was touched");
    }

    // Only a removal: nothing to fetch.
    files.retain(|(path, _)| *path != "src/f1.js");
    let (v3, blobs) = manifest(&files);
    let done = env.ctl.refresh(&id, &v3, &blobs).await.unwrap();
    assert_eq!((done.written, done.removed, blobs.fetched()), (0, 1, 0));
    assert!(!ws.join("src/f1.js").exists());
    assert_eq!(
        std::fs::read(ws.join("index.html")).unwrap(),
        b"<html></html>"
    );
}

/// A manifest longer than the part compared between two yields to the runtime: a change
/// in a later part is written, a file left out of an earlier part removed, and nothing else.
pub(super) async fn a_manifest_compared_in_parts_is_compared_whole(d: Deployment) {
    const FILES: usize = 9_000;
    let env = Env::new(d).await;
    let id = env.sandbox("parts", HOUR).await;
    let contents: Vec<(String, Vec<u8>)> = (0..FILES)
        .map(|i| {
            (
                format!("src/d{}/f{i}.js", i % 30),
                format!("{i}\n").into_bytes(),
            )
        })
        .collect();
    let mut files: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    let (v1, blobs) = manifest(&files);
    let done = env.ctl.refresh(&id, &v1, &blobs).await.unwrap();
    assert_eq!(
        (done.written, done.removed, blobs.fetched()),
        (FILES, 0, FILES)
    );
    let done = env.ctl.refresh(&id, &v1, &blobs).await.unwrap();
    assert_eq!((done.written, done.removed, blobs.fetched()), (0, 0, 0));

    files[8_500].1 = b"changed";
    files.remove(100);
    let (v2, blobs) = manifest(&files);
    let done = env.ctl.refresh(&id, &v2, &blobs).await.unwrap();
    assert_eq!((done.written, done.removed, blobs.fetched()), (1, 1, 1));
    let ws = env.workspace(&id);
    assert_eq!(
        std::fs::read(ws.join("src/d10/f8500.js")).unwrap(),
        b"changed"
    );
    assert!(!ws.join("src/d10/f100.js").exists());
    assert!(ws.join("src/d11/f101.js").exists());
}

pub(super) async fn refresh_refuses_blocked_paths(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("blocked", HOUR).await;
    for bad in ["../escape.txt", "node_modules/x.js", "/etc/passwd"] {
        let (files, blobs) = manifest(&[(bad, b"x")]);
        let err = env.ctl.refresh(&id, &files, &blobs).await.unwrap_err();
        assert!(
            matches!(err, SandboxError::PathBlocked { .. }),
            "{bad}: {err:?}"
        );
    }
}

pub(super) async fn seeded_files_land_inside_and_never_through_symlinks(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("seed", HOUR).await;
    let ws = env.workspace(&id);
    let contract = ".cache/opencode/selected_agent_contract.json";
    env.ctl
        .seed_file(&id, contract, b"{\"agent\": null}")
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(ws.join(contract)).unwrap(),
        b"{\"agent\": null}"
    );
    let outside = env.data.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, ws.join("planted")).unwrap();
    for bad in ["planted/x.json", "../escape.json", "/etc/x.json"] {
        let err = env.ctl.seed_file(&id, bad, b"x").await.unwrap_err();
        assert!(
            matches!(err, SandboxError::PathBlocked { .. }),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    let missing = draftsmith_sandbox::SandboxId::parse("never-created").unwrap();
    assert!(matches!(
        env.ctl
            .seed_file(&missing, contract, b"x")
            .await
            .unwrap_err(),
        SandboxError::NotFound(_)
    ));
}

pub(super) async fn tools_edit_the_workspace(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("edit", HOUR).await;
    let write = serde_json::json!({"path": "src/App.jsx", "content": "export default 1;\n"});
    let none = CancellationToken::new;
    let outcome = env
        .ctl
        .run_tool(&id, "write", &write.to_string(), none())
        .await
        .unwrap();
    assert!(outcome.is_ok(), "{:?}", outcome.output);
    let run = serde_json::json!({"command": "cat src/App.jsx; echo $HOME"});
    let outcome = env
        .ctl
        .run_tool(&id, "run_command", &run.to_string(), none())
        .await
        .unwrap();
    let output = outcome.output["output"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(output.contains("export default 1;"), "{:?}", outcome.output);
    let blocked = serde_json::json!({"path": "node_modules/x.js", "content": "x"});
    let outcome = env
        .ctl
        .run_tool(&id, "write", &blocked.to_string(), none())
        .await
        .unwrap();
    assert_eq!(
        outcome.error.map(|e| e.code.as_str()),
        Some("CODING_AGENT_PATH_BLOCKED")
    );
    let changes = env.ctl.snapshot(&id, &[]).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].path, "src/App.jsx");
}

pub(super) async fn snapshot_prunes_generated_directories(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("snapshot", HOUR).await;
    let (base, blobs) = manifest(&[
        ("index.html", b"<p>"),
        ("src/main.jsx", b"main"),
        ("old.txt", b"o"),
    ]);
    env.ctl.refresh(&id, &base, &blobs).await.unwrap();
    let ws = env.workspace(&id);
    for i in 0..5_000 {
        let dir = ws.join(format!("node_modules/pkg{}/lib", i % 250));
        if i < 250 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        std::fs::write(dir.join(format!("f{i}.js")), b"module.exports = 1;").unwrap();
    }
    for generated in [
        "dist/assets/i.js",
        ".vite/deps/x.js",
        ".cache/c",
        "sub/.turbo/t",
        "tsconfig.tsbuildinfo",
        ".eslintcache",
    ] {
        let path = ws.join(generated);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"generated").unwrap();
    }
    std::fs::write(ws.join("src/main.jsx"), b"main, edited").unwrap();
    std::fs::write(ws.join("src/new.jsx"), b"new").unwrap();
    std::fs::remove_file(ws.join("old.txt")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", ws.join("src/link.txt")).unwrap();
    let started = Instant::now();
    let changes = env.ctl.snapshot(&id, &base).await.unwrap();
    let took = started.elapsed();
    let listed: Vec<(&str, Option<&[u8]>)> = changes
        .iter()
        .map(|c| (c.path.as_str(), c.content.as_deref()))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("old.txt", None),
            ("src/main.jsx", Some(&b"main, edited"[..])),
            ("src/new.jsx", Some(&b"new"[..])),
        ]
    );
    assert!(took < Duration::from_secs(2), "snapshot took {took:?}");
}
