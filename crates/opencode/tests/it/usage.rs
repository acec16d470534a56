//! Usage on the real OpenCode: each model call is reported from OpenCode's own assistant
//! messages (their `tokens`), once, with the counts the provider gave OpenCode.

use draftsmith_engine::{Engine, Outcome};
use draftsmith_opencode::OpencodeEngine;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

#[tokio::test]
async fn each_model_call_is_reported_from_opencodes_messages() {
    let model = model(json!({"scenarios": [
        {"name": "usage", "match": {"contains": "SCENARIO_USAGE"}, "turns": [
            {"steps": [
                {"text": "Writing.", "chunk": 4},
                {"tool_call": {"id": "call_write", "name": "write", "arguments": {
                    "filePath": "notes.txt", "content": "counted\n"}}}
            ], "usage": {"input_tokens": 1234, "output_tokens": 56}},
            {"steps": [{"text": "Done.", "chunk": 2}],
             "usage": {"input_tokens": 777, "output_tokens": 8}}
        ]}
    ]}))
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(config(scratch.path()));
    let sink = RecordingSink::default();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(
            job(&model, &ws, "SCENARIO_USAGE: write notes"),
            &sink,
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: "Done.".into()
        }
    );
    let answered: Vec<_> = model
        .requests()
        .into_iter()
        .filter(|r| r.scenario == "usage")
        .filter_map(|r| r.usage)
        .collect();
    assert_eq!(answered.len(), 2, "{answered:?}");
    let calls = sink.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    for (i, (call, reported)) in calls.iter().zip(&answered).enumerate() {
        assert_eq!(call.model, "mock/coder");
        assert_eq!(call.step, i);
        let usage = call.usage.expect("OpenCode reported the call's tokens");
        // The prompt as the provider counted it, however OpenCode splits the cache off.
        assert_eq!(
            usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens,
            reported.input_tokens + reported.cache_read_tokens + reported.cache_write_tokens,
            "call {i}: {usage:?} against {reported:?}"
        );
        assert_eq!(usage.output_tokens, reported.output_tokens, "call {i}");
    }
    engine.shutdown().await;
}
