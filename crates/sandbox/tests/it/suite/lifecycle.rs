//! Lifetimes: warm reuse, TTL expiry and reaping, touch, stop.

use std::time::Duration;

use draftsmith_sandbox::{Isolation, SandboxError};
use pretty_assertions::assert_eq;
use tokio_util::sync::CancellationToken;

use super::{GONE, HOUR, exec};
use crate::support::{Deployment, Env, eventually, marker, pids_with};

pub(super) async fn warm_reuse(d: Deployment) {
    let env = Env::new(d).await;
    let id = crate::support::unique_id("chat");
    assert!(
        !env.ctl
            .create(&id, "vite-react", HOUR)
            .await
            .unwrap()
            .reused
    );
    std::fs::write(env.workspace(&id).join("kept.txt"), b"warm").unwrap();
    assert!(
        env.ctl
            .create(&id, "vite-react", HOUR)
            .await
            .unwrap()
            .reused
    );
    assert_eq!(
        std::fs::read(env.workspace(&id).join("kept.txt")).unwrap(),
        b"warm"
    );
    assert_eq!(env.ctl.isolation(), Isolation::Bwrap);
}

pub(super) async fn ttl_expiry_reaps_processes_and_directory(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("ttl", Duration::from_millis(400)).await;
    let dir = env.workspace(&id).parent().unwrap().to_path_buf();
    let m = marker();
    let ctl = env.ctl.clone();
    let run_id = id.clone();
    let command = format!("sleep {m} & sleep {m}");
    let running = tokio::spawn(async move {
        ctl.exec(&run_id, exec(&command, HOUR), CancellationToken::new())
            .await
    });
    assert!(
        eventually(GONE, || pids_with(&m).len() >= 2).await,
        "the command never started"
    );
    let netns = env.local.network_namespace(&id).expect("its namespace");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let reaped = env.ctl.reap_expired().await.unwrap();
    assert_eq!(reaped, vec![id.clone()]);
    assert!(
        eventually(GONE, || pids_with(&m).is_empty()).await,
        "{:?} survived",
        pids_with(&m)
    );
    assert!(
        eventually(GONE, || netns.upgrade().is_none()).await,
        "the reaped sandbox's network namespace is still held"
    );
    assert!(!dir.exists(), "the directory was not removed");
    let out = running.await.unwrap();
    assert!(
        out.is_err() || out.as_ref().is_ok_and(|o| o.cancelled),
        "{out:?}"
    );
    assert!(matches!(
        env.ctl
            .exec(&id, exec("true", HOUR), CancellationToken::new())
            .await,
        Err(SandboxError::NotFound(_))
    ));
}

pub(super) async fn create_reaps_expired_ones_first(d: Deployment) {
    let env = Env::new(d).await;
    let old = env.sandbox("old", Duration::from_millis(100)).await;
    let old_dir = env.workspace(&old);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let _new = env.sandbox("new", HOUR).await;
    assert!(!old_dir.exists());
    let again = env.ctl.create(&old, "vite-react", HOUR).await.unwrap();
    assert!(!again.reused, "an expired sandbox is never reused");
}

pub(super) async fn touch_keeps_a_sandbox_warm(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("touch", Duration::from_millis(300)).await;
    env.ctl.touch(&id, HOUR).await.unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(env.ctl.reap_expired().await.unwrap().is_empty());
    assert!(
        env.ctl
            .create(&id, "vite-react", HOUR)
            .await
            .unwrap()
            .reused
    );
}

pub(super) async fn stop_kills_and_removes(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("stop", HOUR).await;
    let dir = env.workspace(&id).parent().unwrap().to_path_buf();
    let m = marker();
    let ctl = env.ctl.clone();
    let run_id = id.clone();
    let command = format!("sleep {m} & sleep {m}");
    let running = tokio::spawn(async move {
        ctl.exec(&run_id, exec(&command, HOUR), CancellationToken::new())
            .await
    });
    assert!(
        eventually(GONE, || pids_with(&m).len() >= 2).await,
        "the command never started"
    );
    let netns = env.local.network_namespace(&id).expect("its namespace");
    env.ctl.stop(&id).await.unwrap();
    assert!(
        eventually(GONE, || pids_with(&m).is_empty()).await,
        "{:?} survived",
        pids_with(&m)
    );
    assert!(
        eventually(GONE, || netns.upgrade().is_none()).await,
        "the stopped sandbox's network namespace is still held"
    );
    assert!(!dir.exists());
    let _ = running.await.unwrap();
    env.ctl.stop(&id).await.unwrap();
}

pub(super) async fn unknown_sandbox_is_not_found(d: Deployment) {
    let env = Env::new(d).await;
    let id = crate::support::unique_id("nobody");
    let err = env.ctl.snapshot(&id, &[]).await.unwrap_err();
    assert!(matches!(err, SandboxError::NotFound(_)), "{err:?}");
    let err = env.ctl.touch(&id, HOUR).await.unwrap_err();
    assert!(matches!(err, SandboxError::NotFound(_)), "{err:?}");
}
