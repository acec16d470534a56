//! Spare sandboxes: a new sandbox starts from a spare that holds its template's files,
//! owned by the new sandbox's own uid, and each spare is handed out once.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

use draftsmith_sandbox::{IsolationMode, LocalController, SandboxController};
use tokio_util::sync::CancellationToken;

use crate::suite::exec;
use crate::support::{eventually, manifest, unique_id};

const TTL: Duration = Duration::from_secs(600);

fn spare_dirs(root: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("spare-"))
        .collect()
}

#[tokio::test]
async fn a_new_sandbox_starts_from_a_spare_holding_its_template_and_owned_by_it() {
    let data = tempfile::Builder::new()
        .prefix("sandbox-it-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let root = data.path().join("sandboxes");
    let local = LocalController::new(
        root.clone(),
        data.path().join("cache"),
        IsolationMode::Bwrap,
    )
    .expect("bubblewrap must work on this machine")
    .with_hidden_path(data.path().to_path_buf())
    .with_spares(1);
    let local = Arc::new(local);
    let template = draftsmith_templates::find("static").unwrap().files();
    let files: Vec<(&str, &[u8])> = template.iter().map(|(p, b)| (p.as_str(), *b)).collect();
    let (entries, blobs) = manifest(&files);

    // The first sandbox of a template is made while its caller waits, and starts empty;
    // a spare is made after it.
    let first = unique_id("chat");
    assert!(!local.create(&first, "static", TTL).await.unwrap().reused);
    let first_dir = local.workspace_dir(&first).unwrap();
    assert!(!first_dir.join(files[0].0).exists());
    assert!(eventually(Duration::from_secs(10), || local.spares_ready() == 1).await);
    let refreshed = local.refresh(&first, &entries, &blobs).await.unwrap();
    assert_eq!(refreshed.written, files.len());

    // The next one is the spare, renamed: the template is there before any refresh, and
    // a refresh to it writes nothing.
    let second = unique_id("chat");
    assert!(!local.create(&second, "static", TTL).await.unwrap().reused);
    let second_dir = local.workspace_dir(&second).unwrap();
    for (path, bytes) in &files {
        assert_eq!(
            std::fs::read(second_dir.join(path)).unwrap(),
            *bytes,
            "{path}"
        );
    }
    let refreshed = local.refresh(&second, &entries, &blobs).await.unwrap();
    assert_eq!((refreshed.written, refreshed.removed), (0, 0));
    // A draft that differs from its template gets only the difference.
    let mut changed = files.clone();
    changed[0].1 = b"changed";
    let (changed_entries, changed_blobs) = manifest(&changed);
    let refreshed = local
        .refresh(&second, &changed_entries, &changed_blobs)
        .await
        .unwrap();
    assert_eq!((refreshed.written, refreshed.removed), (1, 0));

    // Its files belong to its own uid, not the first sandbox's, and its commands can
    // change them.
    let owner = |dir: &std::path::Path| std::fs::metadata(dir.join(files[1].0)).unwrap().uid();
    if draftsmith_process::is_root() {
        assert_ne!(owner(&second_dir), owner(&first_dir));
        assert_ne!(owner(&second_dir), 0);
    }
    let out = local
        .exec(
            &second,
            exec(
                &format!("echo mine > {} && echo WROTE", files[1].0),
                Duration::from_secs(30),
            ),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(out.output.contains("WROTE"), "{}", out.output);
    assert_eq!(
        std::fs::read_to_string(second_dir.join(files[1].0)).unwrap(),
        "mine\n"
    );

    // Another spare is made for the next one, in a directory of its own: none is handed
    // out twice, and the one taken left no directory behind.
    assert!(eventually(Duration::from_secs(10), || local.spares_ready() == 1).await);
    let third = unique_id("chat");
    local.create(&third, "static", TTL).await.unwrap();
    let third_dir = local.workspace_dir(&third).unwrap();
    assert_ne!(third_dir, second_dir);
    assert_eq!(
        std::fs::read_to_string(third_dir.join(files[1].0))
            .unwrap()
            .as_bytes(),
        files[1].1
    );
    assert!(eventually(Duration::from_secs(10), || local.spares_ready() == 1).await);
    assert_eq!(spare_dirs(&root).len(), 1, "{:?}", spare_dirs(&root));

    // A template nobody asked for gets none; an unknown one gets none either.
    local
        .create(&unique_id("chat"), "no-such-template", TTL)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(local.spares_ready(), 1);
}
