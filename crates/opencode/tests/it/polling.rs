//! Losing the event stream mid-run: the engine follows the session by polling its messages,
//! without repeating or losing text, and still reports every tool call.

use draftsmith_engine::{Engine, Outcome};
use draftsmith_opencode::{Faults, OpencodeConfig, OpencodeEngine};
use pretty_assertions::assert_eq;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

const TEXTS: [&str; 3] = [
    "Writing the first file.",
    "And the second.",
    "Both written.",
];

#[tokio::test]
async fn a_lost_event_stream_is_replaced_by_polling_without_repeats() {
    let model = model(json!({"chunk_delay_ms": 20, "scenarios": [
        {"name": "poll", "match": {"contains": "SCENARIO_POLL"}, "turns": [
            {"steps": [{"text": TEXTS[0], "chunk": 3}, {"delay_ms": 300},
                {"tool_call": {"id": "call_one", "name": "write", "arguments": {
                    "filePath": "one.txt", "content": "one\n"}}}]},
            {"steps": [{"text": TEXTS[1], "chunk": 3}, {"delay_ms": 300},
                {"tool_call": {"id": "call_two", "name": "write", "arguments": {
                    "filePath": "two.txt", "content": "two\n"}}}]},
            {"steps": [{"text": TEXTS[2], "chunk": 3}]}
        ]}
    ]}))
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(OpencodeConfig {
        faults: Faults {
            drop_event_stream_after: Some(12),
        },
        ..config(scratch.path())
    });
    let sink = RecordingSink::default();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(
            job(&model, &ws, "SCENARIO_POLL"),
            &sink,
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    let timings = engine.timings(&ws).unwrap();
    eprintln!("polling run: {timings:?}");

    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: TEXTS[2].into()
        }
    );
    assert!(timings.polled, "the fault should have cut the stream");
    assert!(
        sink.diagnostic_codes()
            .contains(&"opencode_event_stream_lost".to_owned())
    );
    assert_eq!(sink.streamed(), TEXTS.concat());
    assert_eq!(sink.messages(), TEXTS.to_vec());
    let tools = sink.tool_events();
    for call in ["call_one", "call_two"] {
        let of_call: Vec<&str> = tools.iter().filter(|t| t.2 == call).map(|t| t.0).collect();
        assert_eq!(of_call, vec!["tool.started", "tool.completed"], "{tools:?}");
    }
    assert_eq!(
        std::fs::read_to_string(ws.join("two.txt")).unwrap(),
        "two\n"
    );
    assert!(model.violations().is_empty(), "{:?}", model.violations());
    let pid = engine.server_pid(&ws).await.unwrap();
    shut_down(&engine, &[pid]).await;
}
