//! The contract tools answer from the contract file the service writes into the workspace.

use draftsmith_tools::{CONTRACT_FILE, ToolContext, run_tool};
use serde_json::{Value, json};

fn envelope(outcome: &draftsmith_tools::ToolOutcome) -> Value {
    outcome.output.clone()
}

#[tokio::test]
async fn without_a_contract_file_the_contract_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ToolContext::local(dir.path());
    let full = run_tool(&ctx, "coding_agent_get_agent_integration_contract", "{}").await;
    assert_eq!(
        envelope(&full),
        json!({"ok": true, "contract": {"agent": null, "tools": [], "runtime_ready": false, "diagnostics": []}})
    );
    let summary = run_tool(&ctx, "coding_agent_describe_selected_agent_contract", "{}").await;
    assert_eq!(envelope(&summary)["summary"]["agent"], Value::Null);
}

#[tokio::test]
async fn the_contract_file_is_returned_whole_or_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let contract = json!({
        "agent": {"id": "a1", "name": "Analyst", "description": "Sales", "instructions": "", "tool_refs": ["t1", "ghost"]},
        "tools": [{
            "id": "t1", "name": "revenue", "description": "Revenue",
            "input_schema": {"type": "object", "properties": {"year": {"type": "integer"}}, "required": ["year"]},
            "output_schema": {"type": "object", "properties": {"total": {"type": "number"}}},
            "ui_hints": [{"location": "tool", "x-ui": {"kind": "stat", "value": "total", "unit": null, "label": null}}]
        }],
        "runtime_ready": false,
        "diagnostics": [{"code": "unresolved_tool", "message": "missing", "location": "ghost"}]
    });
    let file = dir.path().join(CONTRACT_FILE);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, contract.to_string()).unwrap();
    let ctx = ToolContext::local(dir.path());
    let full = run_tool(&ctx, "coding_agent_get_agent_integration_contract", "{}").await;
    assert_eq!(envelope(&full), json!({"ok": true, "contract": contract}));
    let summary = run_tool(
        &ctx,
        "coding_agent_describe_selected_agent_contract",
        r#"{"include_unresolved": true}"#,
    )
    .await;
    let summary = &envelope(&summary)["summary"];
    assert_eq!(
        summary["tools"][0]["input_fields"],
        json!(["year: integer (required)"])
    );
    assert_eq!(summary["unresolved_tools"], json!(["ghost"]));
    let bad = run_tool(
        &ctx,
        "coding_agent_describe_selected_agent_contract",
        r#"{"include_unresolved": "yes"}"#,
    )
    .await;
    assert_eq!(
        envelope(&bad)["error"]["code"],
        "CODING_AGENT_TOOL_INPUT_INVALID"
    );
    assert_eq!(envelope(&bad)["error"]["field"], "include_unresolved");
}
