//! Runtime agents and tools as resources, the selected agent, its integration contract, and
//! the contract in every run's context.

use draftsmith_core::api::{App, Run};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use serde_json::{Value, json};

use crate::both_stores;
use crate::runs::{new_app, start_run};

const THREE_ANSWERS: &str = include_str!("../fixtures/scripts/three_answers.json");

both_stores!(
    contract_resolves_tools_hints_and_gaps,
    broken_schemas_are_refused_naming_where,
    runs_carry_the_contract
);

async fn sales_agent(admin: &ApiClient) -> (Value, Value) {
    let revenue: Value = admin
        .post(
            "/admin/tools",
            &json!({
                "name": "revenue_by_month",
                "description": "Revenue per month",
                "input_schema": {"type": "object", "properties": {"year": {"type": "integer"}}, "required": ["year"]},
                "output_schema": {"type": "object", "properties": {
                    "rows": {"type": "array", "items": {"type": "object", "properties": {"month": {"type": "string"}, "revenue": {"type": "number"}}}},
                    "total": {"type": "number", "x_ui": {"kind": "stat", "value": "total", "unit": "EUR"}}
                }},
                "x-ui": {"kind": "chart", "chart_type": "bar", "x": "month", "series": ["revenue"]}
            }),
            201,
        )
        .await;
    admin
        .post::<_, Value>(
            "/admin/tools",
            &json!({"name": "odd", "input_schema": {}, "output_schema": {}, "x_ui": {"kind": "map"}}),
            201,
        )
        .await;
    let agent: Value = admin
        .post(
            "/admin/agents",
            &json!({"name": "Analyst", "description": "Sales questions", "tools": [revenue["id"], "odd", "deleted_tool"]}),
            201,
        )
        .await;
    (agent, revenue)
}

async fn contract_resolves_tools_hints_and_gaps(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let app = new_app(&admin, "vite-react").await;
    let empty: Value = admin
        .get(
            &format!("/admin/apps/{}/builder/agent-contract", app.id),
            200,
        )
        .await;
    assert_eq!(
        empty,
        json!({"agent": null, "tools": [], "runtime_ready": false, "diagnostics": []})
    );

    let (agent, revenue) = sales_agent(&admin).await;
    let selected: App = admin
        .request(
            reqwest::Method::PUT,
            &format!("/admin/apps/{}/selected-agent", app.id),
        )
        .json(&json!({"agent_id": agent["id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(selected.selected_agent_id.as_deref(), agent["id"].as_str());

    let contract: Value = admin
        .get(
            &format!("/admin/apps/{}/builder/agent-contract", app.id),
            200,
        )
        .await;
    assert_eq!(contract["agent"]["name"], "Analyst");
    assert_eq!(contract["runtime_ready"], false);
    let names: Vec<&str> = contract["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["revenue_by_month", "odd"]);
    assert_eq!(contract["tools"][0]["id"], revenue["id"]);
    assert_eq!(
        contract["tools"][0]["ui_hints"],
        json!([
            {"location": "tool", "x-ui": {"kind": "chart", "chart_type": "bar", "x": "month", "series": [{"field": "revenue", "label": null}], "title": null}},
            {"location": "output_schema.properties.total", "x-ui": {"kind": "stat", "value": "total", "unit": "EUR", "label": null}}
        ])
    );
    let codes: Vec<(&str, &str)> = contract["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["code"].as_str().unwrap(), d["location"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("ui_hint_unknown_kind", "odd:tool"),
            ("unresolved_tool", "deleted_tool")
        ]
    );

    // Deleting a tool turns it into a diagnostic, never a failure.
    admin
        .delete(
            &format!("/admin/tools/{}", revenue["id"].as_str().unwrap()),
            None,
            204,
        )
        .await;
    let after: Value = admin
        .get(
            &format!("/admin/apps/{}/builder/agent-contract", app.id),
            200,
        )
        .await;
    assert_eq!(after["tools"].as_array().unwrap().len(), 1);
    // Clearing the selection gives the empty contract again.
    admin
        .request(
            reqwest::Method::PUT,
            &format!("/admin/apps/{}/selected-agent", app.id),
        )
        .json(&json!({"agent_id": null}))
        .send()
        .await
        .unwrap();
    let cleared: Value = admin
        .get(
            &format!("/admin/apps/{}/builder/agent-contract", app.id),
            200,
        )
        .await;
    assert_eq!(cleared["agent"], Value::Null);
}

async fn broken_schemas_are_refused_naming_where(kind: StoreKind) {
    let server = TestServer::start(kind).await;
    let admin = server.admin();
    let broken = admin
        .post::<_, Value>(
            "/admin/tools",
            &json!({"name": "t", "input_schema": {"type": "object", "properties": {"a": {"type": "strnig"}}}, "output_schema": {}}),
            400,
        )
        .await;
    let details = assert_error(&broken, "VALIDATION_FAILED");
    assert_eq!(details["field"], "input_schema");
    assert_eq!(details["schema_path"], "/properties/a/type");
    let not_object = admin
        .post::<_, Value>(
            "/admin/tools",
            &json!({"name": "t", "input_schema": {}, "output_schema": 5}),
            400,
        )
        .await;
    assert_eq!(
        assert_error(&not_object, "VALIDATION_FAILED")["field"],
        "output_schema"
    );
    let missing = admin
        .post::<_, Value>(
            "/admin/tools",
            &json!({"name": "t", "input_schema": {}}),
            400,
        )
        .await;
    assert_eq!(
        assert_error(&missing, "VALIDATION_FAILED")["field"],
        "output_schema"
    );
    admin
        .post::<_, Value>(
            "/admin/tools",
            &json!({"name": "t", "input_schema": {}, "output_schema": {}}),
            201,
        )
        .await;
    let taken = admin
        .post::<_, Value>(
            "/admin/tools",
            &json!({"name": "t", "input_schema": {}, "output_schema": {}}),
            409,
        )
        .await;
    assert_error(&taken, "VALIDATION_FAILED");
    let tools: Value = admin.get("/admin/tools", 200).await;
    assert_eq!(
        tools["tools"].as_array().unwrap().len(),
        1,
        "nothing broken was stored"
    );
    let unknown = admin
        .post::<_, Value>("/admin/agents", &json!({"name": "a", "skills": []}), 400)
        .await;
    assert_eq!(
        assert_error(&unknown, "VALIDATION_FAILED")["field"],
        "skills"
    );
    assert_error(
        &admin.get::<Value>("/admin/agents/nope", 404).await,
        "NOT_FOUND",
    );
}

async fn runs_carry_the_contract(kind: StoreKind) {
    let server = TestServer::with_script(kind, THREE_ANSWERS).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let (agent, _) = sales_agent(&admin).await;
    admin
        .request(
            reqwest::Method::PUT,
            &format!("/admin/apps/{}/selected-agent", app.id),
        )
        .json(&json!({"agent_id": agent["id"]}))
        .send()
        .await
        .unwrap();
    let contract: Value = admin
        .get(
            &format!("/admin/apps/{}/builder/agent-contract", app.id),
            200,
        )
        .await;
    let run: Run = start_run(&admin, &app, json!({"input": "build a dashboard"})).await;
    assert_eq!(
        run.input_params["context"]["selected_agent_contract"],
        contract
    );
    collect(&admin, &run.stream_url, None).await;
    let stored: Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    assert_eq!(
        stored.input_params["context"]["selected_agent_contract"],
        contract
    );
    // The same contract is in the workspace, where the seeded OpenCode tools and the native
    // contract tools read it.
    let file = server
        .db
        .dir
        .path()
        .join("sandboxes")
        .join(format!("chat-{}", run.chat_session_id))
        .join("workspace")
        .join(draftsmith_tools::CONTRACT_FILE);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(written, contract);
}

both_stores!(native_contract_tools_and_system_message);

async fn native_contract_tools_and_system_message(kind: StoreKind) {
    let server = TestServer::with_script(
        kind,
        include_str!("../fixtures/scripts/contract_tools.json"),
    )
    .await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let (agent, _) = sales_agent(&admin).await;
    admin
        .request(
            reqwest::Method::PUT,
            &format!("/admin/apps/{}/selected-agent", app.id),
        )
        .json(&json!({"agent_id": agent["id"]}))
        .send()
        .await
        .unwrap();
    let contract: Value = admin
        .get(
            &format!("/admin/apps/{}/builder/agent-contract", app.id),
            200,
        )
        .await;
    let run: Run = start_run(
        &admin,
        &app,
        json!({"input": "build a dashboard for the analyst"}),
    )
    .await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert_eq!(
        events.last().unwrap().body.event_type(),
        "run.completed",
        "{events:#?}"
    );

    let requests = server.model().requests();
    let system = requests[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains("This app embeds a runtime AI agent"),
        "{system}"
    );
    assert!(
        system.contains("revenue_by_month") && system.contains("year: integer (required)"),
        "{system}"
    );
    assert!(
        system.contains("deleted_tool"),
        "unresolved references are part of the baseline"
    );

    let tool_result = |request: usize| -> Value {
        let messages = requests[request].body["messages"].as_array().unwrap();
        let tool = messages.iter().rev().find(|m| m["role"] == "tool").unwrap();
        serde_json::from_str(tool["content"].as_str().unwrap()).unwrap()
    };
    let summary = tool_result(1);
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["summary"]["agent"]["name"], "Analyst");
    assert_eq!(
        summary["summary"]["tools"][0]["input_fields"],
        json!(["year: integer (required)"])
    );
    assert_eq!(
        summary["summary"]["unresolved_tools"],
        json!(["deleted_tool"])
    );
    let full = tool_result(2);
    assert_eq!(full, json!({"ok": true, "contract": contract}));
}
