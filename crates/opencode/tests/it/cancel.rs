//! Cancel aborts the OpenCode session and ends the run `cancelled` within a second; the
//! warm server then serves the next run; the step limit pauses a run; the runs of one
//! server share its one event connection.

use std::time::{Duration, Instant};

use draftsmith_core::EventBody;
use draftsmith_engine::{Engine, Outcome};
use draftsmith_opencode::OpencodeEngine;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

#[tokio::test]
async fn cancel_and_the_step_limit_end_runs_early() {
    let model = model(json!({"scenarios": [
        {"name": "slow", "match": {"contains": "SCENARIO_SLOW"}, "turns": [
            {"steps": [{"text": "Working on it"}, {"delay_ms": 60000}, {"text": " never"}]}
        ]},
        {"name": "quick", "match": {"contains": "SCENARIO_QUICK"}, "turns": [
            {"steps": [{"text": "Quick."}]}
        ]},
        {"name": "long", "match": {"contains": "SCENARIO_LONG"}, "turns": [
            {"steps": [{"tool_call": {"name": "glob", "arguments": {"pattern": "*"}}}]},
            {"steps": [{"tool_call": {"name": "glob", "arguments": {"pattern": "*"}}}]},
            {"steps": [{"tool_call": {"name": "glob", "arguments": {"pattern": "*"}}}]},
            {"steps": [{"text": "Never reached."}]}
        ]}
    ]}))
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(config(scratch.path()));
    let sink = RecordingSink::default();
    let cancel = CancellationToken::new();
    let run = engine.run(job(&model, &ws, "SCENARIO_SLOW"), &sink, cancel.clone());
    let trigger = async {
        sink.wait_for(|e| matches!(e, EventBody::AssistantDelta { .. }))
            .await;
        let clock = Instant::now();
        cancel.cancel();
        clock
    };
    let (finished, cancelled_at) =
        tokio::time::timeout(RUN_TIMEOUT, async { tokio::join!(run, trigger) })
            .await
            .unwrap();
    let took = cancelled_at.elapsed();
    eprintln!("cancel took {took:?}");
    assert_eq!(finished.outcome, Outcome::Cancelled);
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    assert_eq!(finished.transcript, "Working on it");

    // The server is still warm and the aborted session does not block the next run.
    let next = RecordingSink::default();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(
            job(&model, &ws, "SCENARIO_QUICK"),
            &next,
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: "Quick.".into()
        }
    );
    assert!(engine.timings(&ws).unwrap().server_reused);

    let mut long = job(&model, &ws, "SCENARIO_LONG");
    long.max_steps = 2;
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(long, &RecordingSink::default(), CancellationToken::new()),
    )
    .await
    .unwrap();
    assert_eq!(
        finished.outcome,
        Outcome::Paused {
            reason: "step_limit".into()
        }
    );
    // Three runs on one warm server followed its events over one connection.
    assert_eq!(engine.event_connections(&ws).await, Some(1));
    let pid = engine.server_pid(&ws).await.unwrap();
    shut_down(&engine, &[pid]).await;
}
