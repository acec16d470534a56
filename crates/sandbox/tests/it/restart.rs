//! Unconfined mode (`isolation = none`) and a restarted service: leftovers of an earlier
//! process are adopted and reaped, and processes that escaped their group still die.

use std::time::Duration;

use draftsmith_sandbox::{Isolation, IsolationMode, LocalController, SandboxController};
use tokio_util::sync::CancellationToken;

use crate::suite::exec;
use crate::support::{Deployment, Env, eventually, marker, pids_with, unique_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfined_cancel_kills_the_whole_group() {
    let env = Env::with_mode(Deployment::Local, IsolationMode::None).await;
    assert_eq!(env.ctl.isolation(), Isolation::None);
    let id = env.sandbox("none", Duration::from_secs(3600)).await;
    let m = marker();
    let cancel = CancellationToken::new();
    let (ctl, run_id, token) = (env.ctl.clone(), id.clone(), cancel.clone());
    let command = format!("sh -c 'sleep {m}' & sleep {m}");
    let running = tokio::spawn(async move {
        ctl.exec(&run_id, exec(&command, Duration::from_secs(3600)), token)
            .await
    });
    assert!(eventually(Duration::from_secs(10), || pids_with(&m).len() >= 3).await);
    cancel.cancel();
    assert!(running.await.unwrap().unwrap().cancelled);
    assert!(eventually(Duration::from_secs(10), || pids_with(&m).is_empty()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_what_escaped_its_group() {
    let env = Env::with_mode(Deployment::Local, IsolationMode::None).await;
    let id = env.sandbox("escape", Duration::from_secs(3600)).await;
    let m = marker();
    // Returns once the escaped process runs in a session of its own.
    let command = format!(
        "setsid sh -c 'echo $$ > escaped.pid; exec sleep {m}' > /dev/null 2>&1 < /dev/null & \
         while [ ! -s escaped.pid ]; do sleep 0.05; done"
    );
    let out = env
        .ctl
        .exec(
            &id,
            exec(&command, Duration::from_secs(30)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert!(eventually(Duration::from_secs(10), || pids_with(&m).len() == 1).await);
    env.ctl.stop(&id).await.unwrap();
    assert!(eventually(Duration::from_secs(10), || pids_with(&m).is_empty()).await);
}

#[tokio::test]
async fn a_restarted_controller_adopts_and_reaps_leftovers() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (root, cache) = (data.path().join("sandboxes"), data.path().join("cache"));
    let (short, long) = (unique_id("short"), unique_id("long"));
    {
        let first =
            LocalController::new(root.clone(), cache.clone(), IsolationMode::Bwrap).unwrap();
        first
            .create(&short, "static", Duration::from_millis(200))
            .await
            .unwrap();
        first
            .create(&long, "static", Duration::from_secs(3600))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = LocalController::new(root.clone(), cache, IsolationMode::Auto).unwrap();
    assert_eq!(
        second.isolation(),
        Isolation::Bwrap,
        "auto picks bubblewrap where it works"
    );
    assert_eq!(second.reap_expired().await.unwrap(), vec![short.clone()]);
    assert!(!root.join(short.as_str()).exists());
    assert!(
        second
            .create(&long, "static", Duration::from_secs(60))
            .await
            .unwrap()
            .reused
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_gives_an_adopted_sandbox_a_new_namespace() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (root, cache) = (data.path().join("sandboxes"), data.path().join("cache"));
    let id = unique_id("adopted");
    let script = "readlink /proc/self/ns/net; \
                  curl -sS -x http://127.0.0.1:3128 http://off-the-list.example/; echo";
    let first = LocalController::new(root.clone(), cache.clone(), IsolationMode::Bwrap).unwrap();
    first
        .create(&id, "static", Duration::from_secs(3600))
        .await
        .unwrap();
    let out = first
        .exec(
            &id,
            exec(script, Duration::from_secs(30)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    let before = out.output.lines().next().unwrap_or_default().to_owned();
    assert!(before.starts_with("net:["), "{}", out.output);
    let held = first.network_namespace(&id).unwrap();
    drop(first);
    assert!(
        held.upgrade().is_none(),
        "the service went, its namespaces with it"
    );

    let second = LocalController::new(root, cache, IsolationMode::Bwrap).unwrap();
    let out = second
        .exec(
            &id,
            exec(script, Duration::from_secs(30)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    let after = out.output.lines().next().unwrap_or_default();
    assert!(
        after.starts_with("net:[") && after != before,
        "{}",
        out.output
    );
    assert!(
        out.output
            .contains("off-the-list.example is not on the sandbox's egress allow-list"),
        "the adopted sandbox's proxy answers in its new namespace: {}",
        out.output
    );
    let held = second.network_namespace(&id).unwrap();
    second.stop(&id).await.unwrap();
    assert!(held.upgrade().is_none());
}

#[tokio::test]
async fn the_periodic_reaper_ends_idle_sandboxes() {
    let env = Env::new(Deployment::Local).await;
    let id = env.sandbox("idle", Duration::from_millis(100)).await;
    let dir = env.workspace(&id);
    let stop = CancellationToken::new();
    let task = env
        .local
        .spawn_reaper(Duration::from_millis(50), stop.clone());
    assert!(eventually(Duration::from_secs(5), || !dir.exists()).await);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn reaping_collects_dependency_trees_nobody_used() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (root, cache) = (data.path().join("sandboxes"), data.path().join("cache"));
    let tree = cache.join("node_modules").join("0123abcd");
    std::fs::create_dir_all(tree.join("node_modules/pkg")).unwrap();
    std::fs::write(tree.join("node_modules/pkg/index.js"), b"x").unwrap();
    let kept = LocalController::new(root.clone(), cache.clone(), IsolationMode::None).unwrap();
    kept.reap_expired().await.unwrap();
    assert!(tree.exists(), "a tree used within the idle time stays");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let strict = LocalController::new(root, cache, IsolationMode::None)
        .unwrap()
        .with_dependency_idle(Duration::from_millis(10));
    strict.reap_expired().await.unwrap();
    assert!(!tree.exists(), "an idle tree goes with the next reaping");
}
