//! `run`: exit codes, output, timeout, cancellation, a stop, dropping the future.

use std::time::Duration;

use draftsmith_process::{ProcessGroups, RunError, pids_mentioning, run};
use tokio_util::sync::CancellationToken;

use crate::support::{all_gone, bounds, eventually, marked, run_alone, sh, start};

#[tokio::test]
async fn reports_exit_code_and_output() {
    let groups = ProcessGroups::default();
    let text = "echo out; echo err >&2; exit 3";
    let out = run(sh(text), bounds(10_000), CancellationToken::new(), &groups)
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(3));
    assert!(out.output.contains("out") && out.output.contains("err"));
    assert!(!out.timed_out && !out.cancelled);
    assert!(groups.is_empty());
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error() {
    let command = tokio::process::Command::new("/nonexistent/draftsmith-program");
    let err = run_alone(command, 1_000).await.unwrap_err();
    assert!(matches!(err, RunError::Spawn(_)), "{err}");
    assert!(err.to_string().starts_with("cannot start the command: "));
}

#[tokio::test]
async fn the_output_tail_is_bounded() {
    let text = "i=0; while [ $i -lt 5000 ]; do echo line-$i; i=$((i+1)); done";
    let out = run_alone(sh(text), 10_000).await.unwrap();
    assert_eq!(out.exit_code, Some(0));
    assert!(out.output.ends_with("line-4999\n"), "{}", out.output);
    assert!(out.output.starts_with("[… "), "{}", out.output);
    let kept = out.output.split_once('\n').unwrap().1;
    assert!(kept.len() <= 1024, "{}", kept.len());
}

#[tokio::test]
async fn timeout_kills_grandchildren() {
    let (mark, _leftovers) = marked();
    // A grandchild in its own session: a group kill alone would miss it.
    let text = format!("setsid sleep {mark} & sleep {mark}.5 & sleep {mark}.7");
    let out = run_alone(sh(&text), 300).await.unwrap();
    assert!(out.timed_out);
    assert!(!out.cancelled);
    assert_eq!(out.exit_code, None);
    assert!(eventually(|| pids_mentioning(&mark).is_empty()).await);
}

#[tokio::test]
async fn cancellation_kills_the_tree() {
    let (mark, _leftovers) = marked();
    let groups = ProcessGroups::default();
    let cancel = CancellationToken::new();
    let task = start(
        format!("setsid sleep {mark} & sleep {mark}.5 & wait"),
        &groups,
        &cancel,
    );
    assert!(eventually(|| pids_mentioning(&mark).len() >= 3).await);
    let tree = pids_mentioning(&mark);
    assert_eq!(groups.len(), 1);
    cancel.cancel();
    let out = task.await.unwrap().unwrap();
    assert!(out.cancelled);
    assert!(!out.timed_out);
    assert_eq!(out.exit_code, None);
    assert!(groups.is_empty());
    assert!(eventually(|| all_gone(&tree)).await, "{tree:?}");
}

#[tokio::test]
async fn an_already_cancelled_run_starts_nothing() {
    let cancel = CancellationToken::new();
    cancel.cancel();
    let groups = ProcessGroups::default();
    let out = run(sh("exit 0"), bounds(1_000), cancel, &groups)
        .await
        .unwrap();
    assert!(out.cancelled);
    assert_eq!(out.exit_code, None);
}

#[tokio::test]
async fn kill_all_ends_running_commands() {
    let (mark, _leftovers) = marked();
    let groups = ProcessGroups::default();
    let task = start(
        format!("sleep {mark} & wait"),
        &groups,
        &CancellationToken::new(),
    );
    assert!(eventually(|| groups.len() == 1 && pids_mentioning(&mark).len() >= 2).await);
    groups.kill_all();
    let out = task.await.unwrap().unwrap();
    assert_eq!(out.exit_code, None);
    assert!(!out.cancelled && !out.timed_out);
    assert!(groups.is_empty());
    assert!(eventually(|| pids_mentioning(&mark).is_empty()).await);
}

#[tokio::test]
async fn dropping_the_future_kills_the_tree() {
    let (mark, _leftovers) = marked();
    let groups = ProcessGroups::default();
    let text = format!("setsid sleep {mark} & sleep {mark}.5 & wait");
    let running = run(sh(&text), bounds(60_000), CancellationToken::new(), &groups);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), running)
            .await
            .is_err()
    );
    assert!(groups.is_empty());
    assert!(eventually(|| pids_mentioning(&mark).is_empty()).await);
}
