//! Process hygiene: cancel and timeout kill a command and everything it started.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{GONE, HOUR, exec};
use crate::support::{Deployment, Env, eventually, marker, pids_in, pids_with};

pub(super) async fn exec_cancel_kills_grandchildren(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("cancel", HOUR).await;
    let ws = env.workspace(&id);
    let m = marker();
    let cancel = CancellationToken::new();
    let ctl = env.ctl.clone();
    let (run_id, token) = (id.clone(), cancel.clone());
    let command = format!("sh -c 'sleep {m}' & sleep {m}");
    let running = tokio::spawn(async move { ctl.exec(&run_id, exec(&command, HOUR), token).await });
    assert!(
        eventually(GONE, || pids_with(&m).len() >= 3).await,
        "the command never started"
    );
    let started = Instant::now();
    cancel.cancel();
    let out = running.await.unwrap().unwrap();
    assert!(out.cancelled && out.exit_code.is_none(), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        eventually(GONE, || pids_with(&m).is_empty()).await,
        "{:?} survived",
        pids_with(&m)
    );
    assert!(eventually(GONE, || pids_in(&ws).is_empty()).await);
}

pub(super) async fn cancel_right_after_start_leaves_nothing(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("early", HOUR).await;
    let m = marker();
    let command = format!("sleep {m} & sleep {m}");
    for delay_ms in 0..12u64 {
        let cancel = CancellationToken::new();
        let (ctl, run_id, token) = (env.ctl.clone(), id.clone(), cancel.clone());
        let request = exec(&command, HOUR);
        let running = tokio::spawn(async move { ctl.exec(&run_id, request, token).await });
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        cancel.cancel();
        let out = running.await.unwrap().unwrap();
        assert!(out.cancelled || out.exit_code.is_none(), "{out:?}");
    }
    assert!(
        eventually(GONE, || pids_with(&m).is_empty()).await,
        "{:?} survived",
        pids_with(&m)
    );
}

pub(super) async fn exec_timeout_kills_grandchildren(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("timeout", HOUR).await;
    let m = marker();
    let command = format!("echo started; (sleep {m} &) ; sleep {m}");
    let out = env
        .ctl
        .exec(
            &id,
            exec(&command, Duration::from_millis(700)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(out.timed_out && out.exit_code.is_none(), "{out:?}");
    assert!(out.output.contains("started"), "{out:?}");
    assert!(
        eventually(GONE, || pids_with(&m).is_empty()).await,
        "{:?} survived",
        pids_with(&m)
    );
}

pub(super) async fn tool_run_command_cancel_kills_everything(d: Deployment) {
    let env = Env::new(d).await;
    let id = env.sandbox("tool", HOUR).await;
    let m = marker();
    let cancel = CancellationToken::new();
    let ctl = env.ctl.clone();
    let (run_id, token) = (id.clone(), cancel.clone());
    let args = serde_json::json!({"command": format!("sleep {m} & sleep {m}")}).to_string();
    let running =
        tokio::spawn(async move { ctl.run_tool(&run_id, "run_command", &args, token).await });
    assert!(
        eventually(GONE, || pids_with(&m).len() >= 2).await,
        "the command never started"
    );
    cancel.cancel();
    let outcome = running.await.unwrap().unwrap();
    assert!(!outcome.is_ok(), "{:?}", outcome.output);
    assert!(
        eventually(GONE, || pids_with(&m).is_empty()).await,
        "{:?} survived",
        pids_with(&m)
    );
}
