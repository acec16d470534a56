//! Seeding: the contract tools work inside the real OpenCode with the app's contract, and
//! a workspace that cannot be seeded fails the run closed before anything starts.

use draftsmith_core::{ErrorCode, EventBody};
use draftsmith_engine::{Engine, Outcome};
use draftsmith_opencode::{CONTRACT_PATH, OpencodeEngine, PROJECT_CUSTOM_TOOLS};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::*;

#[tokio::test]
async fn a_seeding_failure_fails_closed_before_opencode_starts() {
    let model =
        model(json!({"scenarios": [{"name": "any", "turns": [{"steps": [{"text": "no"}]}]}]}))
            .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    // A file where the `.opencode` directory must go.
    std::fs::write(ws.join(".opencode"), "in the way").unwrap();
    let engine = OpencodeEngine::new(config(scratch.path()));
    let sink = RecordingSink::default();
    let finished = engine
        .run(
            job(&model, &ws, "anything"),
            &sink,
            CancellationToken::new(),
        )
        .await;
    let Outcome::Failed { error } = finished.outcome else {
        panic!("expected a failure, got {:?}", finished.outcome)
    };
    assert_eq!(error.code, ErrorCode::CodingAgentOpencodeStartFailed);
    assert!(error.message.contains(".opencode"), "{}", error.message);
    assert!(
        engine.server_pid(&ws).await.is_none(),
        "no server may start"
    );
    assert!(model.requests().is_empty());
    assert!(sink.events().is_empty());
}

#[tokio::test]
async fn the_contract_tools_answer_from_the_seeded_contract() {
    let contract = json!({
        "agent": {"id": "agent_1", "name": "Sales Agent", "description": "Answers sales questions",
                  "instructions": "Be brief.", "tool_refs": ["get_revenue"]},
        "tools": [{"id": "tool_1", "name": "get_revenue", "description": "Revenue by month",
                   "input_schema": {"type": "object", "properties": {"month": {"type": "string"}}, "required": ["month"]},
                   "output_schema": {"type": "object", "properties": {"revenue": {"type": "number"}}},
                   "ui_hints": [{"location": "tool", "x-ui": {"kind": "stat", "value": "revenue", "unit": null, "label": null}}]}],
        "runtime_ready": true,
        "diagnostics": []
    });
    let model = model(json!({"scenarios": [
        {"name": "contract", "match": {"contains": "SCENARIO_CONTRACT"}, "turns": [
            {"steps": [
                {"tool_call": {"id": "call_describe", "name": PROJECT_CUSTOM_TOOLS[1], "arguments": {}}},
                {"tool_call": {"id": "call_get", "name": PROJECT_CUSTOM_TOOLS[0], "arguments": {}}}
            ]},
            {"steps": [{"text": "The app embeds the Sales Agent."}]}
        ]}
    ]}))
    .await;
    let scratch = tempfile::tempdir().unwrap();
    let ws = workspace(scratch.path(), "app");
    let engine = OpencodeEngine::new(config(scratch.path()));
    let mut job = job(&model, &ws, "SCENARIO_CONTRACT");
    job.contract = serde_json::from_value(contract.clone()).unwrap();
    let sink = RecordingSink::default();
    let finished = tokio::time::timeout(
        RUN_TIMEOUT,
        engine.run(job, &sink, CancellationToken::new()),
    )
    .await
    .unwrap();
    assert_eq!(
        finished.outcome,
        Outcome::Completed {
            summary: "The app embeds the Sales Agent.".into()
        },
        "{:?}",
        sink.events()
    );
    let seeded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.join(CONTRACT_PATH)).unwrap()).unwrap();
    assert_eq!(seeded, contract);
    let output = |call: &str| {
        sink.events()
            .into_iter()
            .find_map(|e| match e {
                EventBody::ToolCompleted {
                    tool_call_id,
                    output,
                    ..
                } if tool_call_id == call => output.as_str().map(str::to_owned),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no output for {call}: {:?}", sink.events()))
    };
    let described: serde_json::Value = serde_json::from_str(&output("call_describe")).unwrap();
    assert_eq!(described["agent"]["name"], "Sales Agent");
    assert_eq!(described["runtime_ready"], true);
    assert_eq!(
        described["tools"][0]["input_fields"][0],
        "month: string (required)"
    );
    assert_eq!(described["tools"][0]["ui_hints"][0]["kind"], "stat");
    let full: serde_json::Value = serde_json::from_str(&output("call_get")).unwrap();
    assert_eq!(full, contract);
    let pid = engine.server_pid(&ws).await.unwrap();
    shut_down(&engine, &[pid]).await;
}
