//! The bubblewrap profile on its own: a hidden directory under a read-only bind stays
//! hidden, and the sandbox's own paths are bound back on top of it.

use std::time::Duration;

use draftsmith_sandbox::{BwrapCommandRunner, BwrapProfile, Enclosure, Network, ProcessGroups};
use draftsmith_tools::{CommandRequest, CommandRunner};
use tokio_util::sync::CancellationToken;

fn request(command: &str, cwd: &std::path::Path) -> CommandRequest {
    CommandRequest {
        command: command.into(),
        cwd: cwd.to_path_buf(),
        timeout: Duration::from_secs(30),
        max_output_bytes: 16 * 1024,
        env: Vec::new(),
    }
}

#[tokio::test]
async fn hidden_paths_under_a_read_only_bind_stay_hidden() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = data.path().canonicalize().unwrap();
    let sandboxes = data.join("sandboxes");
    let (own, other) = (sandboxes.join("a/workspace"), sandboxes.join("b/workspace"));
    let home = sandboxes.join("a/home");
    for dir in [&own, &other, &home] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(data.join("visible.txt"), b"PUBLIC\n").unwrap();
    std::fs::write(other.join("secret.txt"), b"OTHER-SANDBOX").unwrap();
    let profile = BwrapProfile {
        bwrap: "/usr/bin/bwrap".into(),
        writable: vec![own.clone(), home.clone()],
        readonly: vec![data.clone()],
        hidden: vec![sandboxes.clone()],
        network: Network::Isolated,
        identity: None,
    };
    let runner = BwrapCommandRunner::new(
        profile,
        home,
        ProcessGroups::default(),
        Enclosure::unbounded(),
    );
    let script = format!(
        "cat {data}/visible.txt; cat {other}/secret.txt; ls {sandboxes}; echo w > {data}/new.txt; \
         echo mine > own.txt && echo OWN-OK; cat /sys/class/net/*/address 2>/dev/null | wc -l",
        data = data.display(),
        other = other.display(),
        sandboxes = sandboxes.display(),
    );
    let out = runner
        .run(request(&script, &own), CancellationToken::new())
        .await
        .unwrap();
    let text = out.output;
    assert!(text.contains("PUBLIC"), "{text}");
    assert!(!text.contains("OTHER-SANDBOX"), "{text}");
    assert!(
        text.lines().any(|l| l == "a"),
        "only a's mount point remains: {text}"
    );
    assert!(!text.lines().any(|l| l == "b"), "{text}");
    assert!(
        !data.join("new.txt").exists(),
        "the read-only bind was writable"
    );
    assert!(text.contains("OWN-OK"), "{text}");
    assert_eq!(std::fs::read(own.join("own.txt")).unwrap(), b"mine\n");
}

#[tokio::test]
async fn an_isolated_network_has_only_loopback() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let ws = dir.path().canonicalize().unwrap();
    let profile = BwrapProfile {
        bwrap: "/usr/bin/bwrap".into(),
        writable: vec![ws.clone()],
        readonly: Vec::new(),
        hidden: Vec::new(),
        network: Network::Isolated,
        identity: None,
    };
    let runner = BwrapCommandRunner::new(
        profile.clone(),
        ws.clone(),
        ProcessGroups::default(),
        Enclosure::unbounded(),
    );
    let out = runner
        .run(
            request("cat /proc/net/dev | tail -n +3 | cut -d: -f1", &ws),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    let interfaces: Vec<&str> = out.output.split_whitespace().collect();
    assert_eq!(interfaces, vec!["lo"], "{}", out.output);

    let shared = BwrapProfile {
        network: Network::Shared,
        ..profile
    };
    let runner = BwrapCommandRunner::new(
        shared,
        ws.clone(),
        ProcessGroups::default(),
        Enclosure::unbounded(),
    );
    let out = runner
        .run(
            request("cat /proc/net/dev | tail -n +3 | cut -d: -f1", &ws),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(out.output.split_whitespace().count() > 1, "{}", out.output);
}
