//! Verification after the agent's edits: a failure goes back to the agent, a repaired one
//! completes, and one that stays broken fails the run with the draft unchanged.

use draftsmith_core::api::{CheckpointKind, CheckpointList, Draft};
use draftsmith_core::{ErrorCode, EventBody};
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::sse::{assert_well_formed, collect};
use draftsmith_testkit::{StoreKind, TestServer};
use serde_json::json;

use crate::runs::{new_app, start_run};

async fn verifying_server(script: &str, repair_turns: usize) -> TestServer {
    let model = draftsmith_mockmodel::MockModel::start(
        draftsmith_mockmodel::Script::from_json(script).unwrap(),
    )
    .await
    .unwrap();
    let mut config = config_for_model(&model.base_url());
    config.coding_agent.verify = true;
    config.coding_agent.repair_turns = repair_turns;
    let mut server = TestServer::start_with(StoreKind::Sqlite, config).await;
    server.model = Some(model);
    server
}

fn verification(events: &[draftsmith_core::RunEvent]) -> Vec<(&'static str, String)> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::VerificationStarted { command } => Some(("started", command.clone())),
            EventBody::VerificationCompleted(r) => Some(("completed", r.command.clone())),
            EventBody::VerificationFailed(r) => Some(("failed", r.command.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_check_goes_back_to_the_agent_and_the_repair_lands() {
    let server = verifying_server(include_str!("../fixtures/scripts/broken_static.json"), 2).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "add behaviour"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert_well_formed(&events, 1);
    assert_eq!(
        events.last().unwrap().body.event_type(),
        "run.completed",
        "{events:#?}"
    );
    let check = "node --check script.js".to_owned();
    assert_eq!(
        verification(&events),
        [
            ("started", check.clone()),
            ("failed", check.clone()),
            ("started", check.clone()),
            ("completed", check)
        ]
    );
    let failed_output = events.iter().find_map(|e| match &e.body {
        EventBody::VerificationFailed(r) => Some(r.output.clone()),
        _ => None,
    });
    assert!(failed_output.unwrap().contains("SyntaxError"));
    // The agent saw the failure in its repair prompt.
    let repair = server
        .model()
        .requests()
        .into_iter()
        .find(|r| r.scenario == "repair")
        .expect("a repair request");
    assert!(repair.body.to_string().contains("SyntaxError"));
    let (script, revision) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/script.js", app.id))
        .await;
    assert_eq!(
        (script.as_slice(), revision),
        (b"console.log('fixed');\n".as_slice(), 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_that_stays_broken_fails_and_leaves_the_draft_alone() {
    let server = verifying_server(include_str!("../fixtures/scripts/broken_vite.json"), 1).await;
    let admin = server.admin();
    let app = new_app(&admin, "vite-react").await;
    let run = start_run(&admin, &app, json!({"input": "break the build"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert_well_formed(&events, 1);
    let error = match &events.last().unwrap().body {
        EventBody::RunFailed { error, .. } => error.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        error.code,
        ErrorCode::CodingAgentVerificationFailed,
        "{}",
        error.message
    );
    assert!(error.message.contains("npm run build"), "{}", error.message);
    let steps = verification(&events);
    assert!(
        steps.contains(&(
            "completed",
            draftsmith_runner::verify::DEPENDENCY_STEP.to_owned()
        )),
        "{steps:?}"
    );
    assert_eq!(
        steps
            .iter()
            .filter(|s| *s == &("failed", "npm run build".to_owned()))
            .count(),
        2,
        "{steps:?}"
    );
    let draft: Draft = admin
        .get(&format!("/admin/apps/{}/draft", app.id), 200)
        .await;
    assert_eq!(draft.revision, 1, "the draft keeps its previous content");
    let list: CheckpointList = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/checkpoints", app.id),
            200,
        )
        .await;
    let rejected = list
        .checkpoints
        .iter()
        .find(|c| c.kind == CheckpointKind::Rejected)
        .expect("the attempt is kept");
    assert_eq!(rejected.changes.as_ref().unwrap().modified, ["src/App.jsx"]);
    assert_eq!(
        error.details.unwrap()["rejected_checkpoint_id"],
        rejected.id
    );
}
