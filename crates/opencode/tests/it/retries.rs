//! Upstream trouble is bounded by draftsmith even where the model gate cannot see it (a
//! provider without a key is reached directly): a model stream cut mid-answer on every
//! attempt makes OpenCode retry forever; the run ends `failed` with the upstream's error once the
//! retry bound passes, and the partial text of the abandoned attempts shows once.

use std::time::{Duration, Instant};

use draftsmith_core::ErrorCode;
use draftsmith_engine::{Engine, Outcome};
use draftsmith_opencode::{OpencodeConfig, OpencodeEngine};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

const BOUND: Duration = Duration::from_secs(5);

/// A provider without a key is reached directly, not through the model gate, so nothing
/// but the retry bound ends OpenCode's retries: the safety net this file tests.
fn keyless(mut job: draftsmith_engine::Job) -> draftsmith_engine::Job {
    job.model.spec.api_key = None;
    job
}

#[tokio::test]
async fn a_stream_cut_on_every_attempt_fails_within_the_retry_bound_without_repeats() {
    let model = model(json!({"scenarios": [
        {"name": "cut", "match": {"contains": "SCENARIO_CUT"}, "turns": [
            {"steps": [{"text": "partial ", "chunk": 4}, {"delay_ms": 100}, {"cut": true}]}
        ]}
    ]}))
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(OpencodeConfig {
        max_retry: BOUND,
        ..config(scratch.path())
    });
    let sink = RecordingSink::default();
    let clock = Instant::now();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(
            keyless(job(&model, &ws, "SCENARIO_CUT")),
            &sink,
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    let elapsed = clock.elapsed();
    let timings = engine.timings(&ws).unwrap();
    eprintln!(
        "cut stream: {elapsed:?}, {timings:?}, {} model requests",
        model.requests().len()
    );

    let Outcome::Failed { error } = &finished.outcome else {
        panic!("expected a failure, got {:?}", finished.outcome)
    };
    assert_eq!(error.code, ErrorCode::CodingAgentModelError);
    assert!(
        error.message.contains("gave up after 5 s"),
        "{}",
        error.message
    );
    // From the first model answer (the cut stream's first text) to the end: the bound plus
    // the first backoff and some slack for a busy machine.
    let first_token = timings.first_token.unwrap();
    let after_first_answer = timings.total - timings.opencode_start - first_token;
    assert!(
        after_first_answer < (BOUND + Duration::from_secs(8)).as_millis() as u64,
        "the bound was not enforced: {after_first_answer} ms after the first answer"
    );
    assert!(model.requests().len() >= 2, "OpenCode should have retried");
    assert_eq!(sink.streamed(), "partial ");
    assert_eq!(
        finished.transcript.matches("partial").count(),
        1,
        "{}",
        finished.transcript
    );
    assert!(sink.messages().is_empty());
    assert!(
        error
            .details
            .as_ref()
            .is_some_and(|d| d["attempts"].as_u64() >= Some(1)),
        "{error:?}"
    );

    // The session was aborted: OpenCode stops calling the model.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = model.requests().len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        model.requests().len(),
        settled,
        "OpenCode kept retrying after the abort"
    );

    let pid = engine.server_pid(&ws).await.unwrap();
    shut_down(&engine, &[pid]).await;
}
