//! Terminal semantics of failed edits: one repaired by a later edit completes; one left
//! unrepaired fails the run with `CODING_AGENT_TOOL_FAILED`, unless the policy is off.

use draftsmith_core::ErrorCode;
use draftsmith_engine::{Engine, Outcome};
use draftsmith_opencode::{OpencodeConfig, OpencodeEngine};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::*;

fn bad_edit(id: &str) -> Value {
    json!({"tool_call": {"id": id, "name": "edit", "arguments": {
        "filePath": "notes.txt", "oldString": "no such text", "newString": "x"}}})
}

fn script() -> Value {
    json!({"scenarios": [
        {"name": "recovered", "match": {"contains": "SCENARIO_RECOVERED"}, "turns": [
            {"steps": [{"text": "Editing."}, bad_edit("call_bad")]},
            {"steps": [{"text": "Retrying with the right text."},
                {"tool_call": {"id": "call_good", "name": "edit", "arguments": {
                    "filePath": "notes.txt", "oldString": "draft", "newString": "final"}}}]},
            {"steps": [{"text": "Fixed."}]}
        ]},
        {"name": "unrecovered", "match": {"contains": "SCENARIO_UNRECOVERED"}, "turns": [
            {"steps": [{"text": "Editing."}, bad_edit("call_bad2")]},
            {"steps": [{"text": "I could not edit it."}]}
        ]}
    ]})
}

async fn run(engine: &OpencodeEngine, job: draftsmith_engine::Job) -> (Outcome, RecordingSink) {
    let sink = RecordingSink::default();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(job, &sink, CancellationToken::new()),
    )
    .await
    .unwrap();
    (finished.outcome, sink)
}

#[tokio::test]
async fn a_repaired_edit_completes_and_an_unrepaired_one_fails_unless_allowed() {
    let model = model(script()).await;
    let scratch = tempfile::tempdir().unwrap();
    let strict_ws = workspace(scratch.path(), "strict");
    let lenient_ws = workspace(scratch.path(), "lenient");
    for ws in [&strict_ws, &lenient_ws] {
        std::fs::write(ws.join("notes.txt"), "a draft note\n").unwrap();
    }
    let strict = OpencodeEngine::new(config(scratch.path()));
    let lenient = OpencodeEngine::new(OpencodeConfig {
        fail_on_unrecovered_edit: false,
        ..config(scratch.path())
    });

    let (outcome, sink) = run(&strict, job(&model, &strict_ws, "SCENARIO_RECOVERED")).await;
    assert_eq!(
        outcome,
        Outcome::Completed {
            summary: "Fixed.".into()
        }
    );
    let tools = sink.tool_events();
    assert!(
        tools.contains(&("tool.failed", "edit".into(), "call_bad".into())),
        "{tools:?}"
    );
    assert!(
        tools.contains(&("tool.completed", "edit".into(), "call_good".into())),
        "{tools:?}"
    );
    let notes = std::fs::read_to_string(strict_ws.join("notes.txt")).unwrap();
    assert_eq!(notes, "a final note\n");

    let (outcome, sink) = run(&strict, job(&model, &strict_ws, "SCENARIO_UNRECOVERED")).await;
    let Outcome::Failed { error } = outcome else {
        panic!("expected a failure, got {outcome:?}")
    };
    assert_eq!(error.code, ErrorCode::CodingAgentToolFailed);
    assert!(error.message.contains("notes.txt"), "{}", error.message);
    assert_eq!(
        sink.messages().last().map(String::as_str),
        Some("I could not edit it.")
    );

    let (outcome, _) = run(&lenient, job(&model, &lenient_ws, "SCENARIO_UNRECOVERED")).await;
    assert_eq!(
        outcome,
        Outcome::Completed {
            summary: "I could not edit it.".into()
        }
    );

    let mut pids = Vec::new();
    for (engine, ws) in [(&strict, &strict_ws), (&lenient, &lenient_ws)] {
        let pid = engine.server_pid(ws).await.unwrap();
        pids.push(pid);
        pids.extend(draftsmith_opencode::descendants(pid));
    }
    strict.shutdown().await;
    shut_down(&lenient, &pids).await;
    assert!(model.violations().is_empty(), "{:?}", model.violations());
}
