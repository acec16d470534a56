//! The OpenCode engine ends model failures as the native engine does, within bounds
//! draftsmith owns (the model gate watches the provider): an upstream HTTP 500 on every
//! attempt fails the run with the provider's status well within 30 s (not after OpenCode's
//! own minute of retries), a stream cut before `[DONE]` fails it `CODING_AGENT_MODEL_ERROR`
//! at once, and a single 503 followed by an answer still completes.

use std::time::Duration;

use draftsmith_core::{ErrorCode, EventError};
use draftsmith_engine::{Engine, Outcome};
use draftsmith_opencode::OpencodeEngine;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// Runs `script` once on a fresh engine; the outcome, and the time from the server being
/// ready to the run's end.
async fn run_script(script: serde_json::Value) -> (Outcome, Duration, usize) {
    let model = model(script).await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(config(scratch.path()));
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(
            job(&model, &ws, "fail please"),
            &RecordingSink::default(),
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    let timings = engine.timings(&ws).unwrap();
    let after_start = Duration::from_millis(timings.total - timings.opencode_start);
    eprintln!(
        "{:?} after the server was ready, {} requests, {timings:?}",
        after_start,
        model.requests().len()
    );
    let pid = engine.server_pid(&ws).await;
    shut_down(&engine, &pid.into_iter().collect::<Vec<_>>()).await;
    (finished.outcome, after_start, model.requests().len())
}

fn failure(outcome: Outcome) -> EventError {
    match outcome {
        Outcome::Failed { error } => error,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn an_upstream_500_fails_with_the_providers_status_within_30_s() {
    let (outcome, took, requests) =
        run_script(json!({"scenarios": [{"name": "http-500", "turns": [
            {"error": {"status": 500, "message": "upstream exploded", "retry_after": 0}}
        ]}]}))
        .await;
    let error = failure(outcome);
    assert_eq!(error.code, ErrorCode::CodingAgentModelError);
    assert!(
        error.message.contains("HTTP 500") && error.message.contains("upstream exploded"),
        "{}",
        error.message
    );
    let details = error.details.unwrap();
    assert_eq!(details["status"], 500);
    assert_eq!(details["attempts"], 3);
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(requests >= 3, "{requests} requests");
}

#[tokio::test]
async fn a_stream_cut_before_done_fails_with_a_model_error() {
    let (outcome, took, requests) = run_script(json!({"scenarios": [{"name": "cut", "turns": [
        {"steps": [{"text": "partial answer"}, {"cut": true}]}
    ]}]}))
    .await;
    let error = failure(outcome);
    assert_eq!(error.code, ErrorCode::CodingAgentModelError);
    assert!(
        error.message.contains("ended before it finished"),
        "{}",
        error.message
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        requests <= 2,
        "OpenCode's retries were cut short: {requests}"
    );
}

#[tokio::test]
async fn one_overloaded_answer_then_an_answer_completes() {
    let (outcome, _, requests) = run_script(json!({"scenarios": [{"name": "retry", "turns": [[
        {"error": {"status": 503, "message": "overloaded, try again", "retry_after": 0}},
        {"steps": [{"text": "Second time lucky."}]}
    ]]}]}))
    .await;
    assert!(matches!(outcome, Outcome::Completed { .. }), "{outcome:?}");
    assert!(requests >= 2);
}
