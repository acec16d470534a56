//! A run on the real OpenCode engine through the service: the scripted model drives
//! OpenCode's own tools, and the result lands in the draft like any other run.

use draftsmith_core::api::Run;
use draftsmith_core::{EventBody, RunStatus};
use draftsmith_testkit::sse::{assert_well_formed, collect};
use draftsmith_testkit::{StoreKind, TestServer};
use serde_json::{Value, json};

use crate::runs::{new_app, start_run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opencode_run_lands_in_the_draft() {
    let script = json!({"scenarios": [{"name": "opencode-write", "turns": [
        {"steps": [
            {"text": "Adding a greeting.", "chunk": 4},
            {"tool_call": {"id": "call_write", "name": "write", "arguments": {
                "filePath": "src/Hello.jsx", "content": "export const Hello = () => <p>Hello</p>;\n"}}}
        ]},
        {"steps": [{"text": "Added src/Hello.jsx.", "chunk": 5}]}
    ]}]});
    let server = TestServer::with_script(StoreKind::Sqlite, &script.to_string()).await;
    let admin = server.admin();
    let app = new_app(&admin, "vite-react").await;
    let caps: Value = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/capabilities", app.id),
            200,
        )
        .await;
    assert_eq!(
        caps["opencode_policy"]["available"], true,
        "run scripts/install-opencode: {caps}"
    );
    let run = start_run(
        &admin,
        &app,
        json!({"input": "greet", "engine": "opencode"}),
    )
    .await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert_well_formed(&events, 1);
    assert_eq!(
        events.last().unwrap().body.event_type(),
        "run.completed",
        "{events:#?}"
    );
    let text: String = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::AssistantDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Adding a greeting.Added src/Hello.jsx.");
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.body, EventBody::ToolCompleted { tool, .. } if tool == "write"))
    );
    let (hello, _) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/src/Hello.jsx", app.id))
        .await;
    assert!(String::from_utf8(hello).unwrap().contains("Hello"));
    let finished: Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    assert_eq!(finished.status, RunStatus::Completed);
    assert!(
        finished
            .timing_metrics_ms
            .get("opencode_start")
            .is_some_and(Value::is_u64),
        "{:?}",
        finished.timing_metrics_ms
    );
    // The context file the seeded OpenCode tools read holds the run's contract.
    let file = server
        .db
        .dir
        .path()
        .join("sandboxes")
        .join(format!("chat-{}", run.chat_session_id))
        .join("workspace")
        .join(draftsmith_tools::CONTRACT_FILE);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(
        written,
        finished.input_params["context"]["selected_agent_contract"]
    );
    server.shutdown().await;
}
