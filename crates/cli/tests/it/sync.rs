//! A draft edited while a run works: disjoint edits merge, the same file edited by both
//! sides fails the run with a conflict and loses neither version.

use draftsmith_core::api::{CheckpointKind, CheckpointList, Run};
use draftsmith_core::{ErrorCode, EventBody, RunStatus};
use draftsmith_testkit::sse::{EventReader, assert_well_formed};
use draftsmith_testkit::{StoreKind, TestServer};
use serde_json::json;

use crate::both_stores;
use crate::runs::{new_app, start_run};

const SLOW_WRITE: &str = include_str!("../fixtures/scripts/slow_write.json");

both_stores!(
    disjoint_edits_during_a_run_merge,
    the_same_file_edited_by_both_sides_conflicts
);

async fn edit_during_run(
    kind: StoreKind,
    path: &str,
    content: &str,
) -> (
    TestServer,
    draftsmith_core::api::App,
    Vec<draftsmith_core::RunEvent>,
    Run,
) {
    let server = TestServer::with_script(kind, SLOW_WRITE).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "write notes"})).await;
    let mut reader = EventReader::open(&admin, &run.stream_url, None).await;
    let mut events = Vec::new();
    loop {
        let event = reader.next().await.unwrap();
        let delta = event.body.event_type() == "assistant.delta";
        events.push(event);
        if delta {
            break;
        }
    }
    admin
        .put_bytes(
            &format!("/admin/apps/{}/draft/files/{path}", app.id),
            content.to_owned(),
            Some("*"),
            200,
        )
        .await;
    events.extend(reader.rest().await);
    assert_well_formed(&events, 1);
    let finished: Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    (server, app, events, finished)
}

async fn disjoint_edits_during_a_run_merge(kind: StoreKind) {
    let (server, app, events, run) = edit_during_run(kind, "human.txt", "by a person\n").await;
    assert_eq!(run.status, RunStatus::Completed, "{events:#?}");
    let admin = server.admin();
    let (notes, revision) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/notes.md", app.id))
        .await;
    assert_eq!(notes, b"from the agent\n");
    assert_eq!(
        revision, 3,
        "the person's edit was revision 2, the run's sync revision 3"
    );
    let (human, _) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/human.txt", app.id))
        .await;
    assert_eq!(human, b"by a person\n");
}

async fn the_same_file_edited_by_both_sides_conflicts(kind: StoreKind) {
    let (server, app, events, run) = edit_during_run(kind, "notes.md", "from a person\n").await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = match &events.last().unwrap().body {
        EventBody::RunFailed { error, .. } => error.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(error.code, ErrorCode::CodingAgentRevisionConflict);
    assert!(error.message.contains("notes.md"), "{}", error.message);
    let admin = server.admin();
    // The person's version stays in the draft…
    let (notes, revision) = admin
        .get_bytes(&format!("/admin/apps/{}/draft/files/notes.md", app.id))
        .await;
    assert_eq!(
        (notes.as_slice(), revision),
        (b"from a person\n".as_slice(), 2)
    );
    // …and the agent's is kept as a rejected checkpoint that can be restored.
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
        .expect("a rejected checkpoint");
    assert_eq!(rejected.run_id, Some(run.run_id));
    let diff: serde_json::Value = admin
        .get(
            &format!(
                "/admin/apps/{}/coding-agent/checkpoints/{}/diff",
                app.id, rejected.id
            ),
            200,
        )
        .await;
    assert_eq!(diff["files"][0]["path"], "notes.md");
    assert!(
        diff["files"][0]["diff"]
            .as_str()
            .unwrap()
            .contains("-from the agent"),
        "{diff}"
    );
}
