//! Checkpoints around runs, restore and its undo, revert, and chat sessions with their
//! history reaching the model.

use draftsmith_core::api::{
    App, ChatSessionDetail, ChatSessionList, Checkpoint, CheckpointDiff, CheckpointKind,
    CheckpointList, Draft, Restored, Run, TokenCreated,
};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::sse::{EventReader, collect};
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use serde_json::{Value, json};

use crate::both_stores;
use crate::runs::{MULTI_STEP, SLOW_TEXT, new_app, start_run};

const THREE_ANSWERS: &str = include_str!("../fixtures/scripts/three_answers.json");

both_stores!(
    every_run_is_between_two_checkpoints,
    restore_and_its_undo_return_the_exact_bytes,
    revert_respects_later_edits,
    restore_is_refused_during_a_run,
    chat_history_reaches_the_model,
    sessions_are_private_to_their_user,
);

fn base(app: &App) -> String {
    format!("/admin/apps/{}/coding-agent", app.id)
}

async fn finished_run(admin: &ApiClient, app: &App, body: Value) -> Run {
    let run = start_run(admin, app, body).await;
    collect(admin, &run.stream_url, None).await;
    admin
        .get(&format!("{}/runs/{}", base(app), run.run_id), 200)
        .await
}

async fn every_run_is_between_two_checkpoints(kind: StoreKind) {
    let server = TestServer::with_script(kind, MULTI_STEP).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = finished_run(&admin, &app, json!({"input": "greet"})).await;
    let list: CheckpointList = admin.get(&format!("{}/checkpoints", base(&app)), 200).await;
    let kinds: Vec<(CheckpointKind, i64)> = list
        .checkpoints
        .iter()
        .map(|c| (c.kind, c.revision))
        .collect();
    assert_eq!(
        kinds,
        [(CheckpointKind::PostRun, 2), (CheckpointKind::PreRun, 1)]
    );
    assert!(
        list.checkpoints
            .iter()
            .all(|c| c.run_id == Some(run.run_id))
    );
    let post = &list.checkpoints[0];
    assert_eq!(post.changes.as_ref().unwrap().added, ["src/Hello.jsx"]);
    assert!(
        list.checkpoints[1]
            .changes
            .as_ref()
            .unwrap()
            .added
            .contains(&"index.html".to_owned())
    );

    let diff: CheckpointDiff = admin
        .get(
            &format!(
                "{}/checkpoints/{}/diff?against={}",
                base(&app),
                list.checkpoints[1].id,
                post.id
            ),
            200,
        )
        .await;
    assert_eq!(diff.files.len(), 1);
    assert_eq!(diff.files[0].change, "added");
    assert!(
        diff.files[0]
            .diff
            .contains("+export default function Hello()"),
        "{}",
        diff.files[0].diff
    );

    let manual: Checkpoint = admin
        .post(
            &format!("{}/checkpoints", base(&app)),
            &json!({"label": "before the redesign"}),
            201,
        )
        .await;
    assert_eq!((manual.kind, manual.revision), (CheckpointKind::Manual, 2));
    let paged: CheckpointList = admin
        .get(&format!("{}/checkpoints?limit=2", base(&app)), 200)
        .await;
    assert_eq!(paged.checkpoints.len(), 2);
    let rest: CheckpointList = admin
        .get(
            &format!(
                "{}/checkpoints?before={}",
                base(&app),
                paged.next_before.unwrap()
            ),
            200,
        )
        .await;
    assert_eq!(rest.checkpoints.len(), 1);
    assert_eq!(rest.checkpoints[0].kind, CheckpointKind::PreRun);
}

async fn draft_bytes(admin: &ApiClient, app: &App) -> Vec<(String, Vec<u8>)> {
    let draft: Draft = admin
        .get(&format!("/admin/apps/{}/draft", app.id), 200)
        .await;
    let mut out = Vec::new();
    for file in draft.files {
        let (bytes, _) = admin
            .get_bytes(&format!("/admin/apps/{}/draft/files/{}", app.id, file.path))
            .await;
        out.push((file.path, bytes));
    }
    out
}

async fn restore_and_its_undo_return_the_exact_bytes(kind: StoreKind) {
    let server = TestServer::with_script(kind, MULTI_STEP).await;
    let admin = server.admin();
    let app = new_app(&admin, "vite-react").await;
    let before = draft_bytes(&admin, &app).await;
    finished_run(&admin, &app, json!({"input": "greet"})).await;
    let after = draft_bytes(&admin, &app).await;
    assert_ne!(before, after);

    let list: CheckpointList = admin.get(&format!("{}/checkpoints", base(&app)), 200).await;
    let pre = list
        .checkpoints
        .iter()
        .find(|c| c.kind == CheckpointKind::PreRun)
        .unwrap();
    let restored: Restored = admin
        .post(
            &format!("{}/checkpoints/{}/restore", base(&app), pre.id),
            &json!({}),
            200,
        )
        .await;
    assert_eq!(restored.revision, 3);
    assert_eq!(restored.restore_checkpoint.kind, CheckpointKind::Restore);
    assert_eq!(restored.restore_checkpoint.revision, 2);
    assert_eq!(restored.changes.deleted, ["src/Hello.jsx"]);
    assert_eq!(draft_bytes(&admin, &app).await, before);

    // Undo the restore through the checkpoint it took.
    let undone: Restored = admin
        .post(
            &format!(
                "{}/checkpoints/{}/restore",
                base(&app),
                restored.restore_checkpoint.id
            ),
            &json!({}),
            200,
        )
        .await;
    assert_eq!(undone.revision, 4);
    assert_eq!(draft_bytes(&admin, &app).await, after);
    let missing = admin
        .post::<_, Value>(
            &format!("{}/checkpoints/nope/restore", base(&app)),
            &json!({}),
            404,
        )
        .await;
    assert_error(&missing, "NOT_FOUND");
}

async fn revert_respects_later_edits(kind: StoreKind) {
    let server = TestServer::with_script(kind, THREE_ANSWERS).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let before = draft_bytes(&admin, &app).await;
    let run = finished_run(&admin, &app, json!({"input": "one"})).await;
    // The run changed nothing, so reverting it is immediately possible.
    let plain: Restored = admin
        .post(
            &format!("{}/runs/{}/revert", base(&app), run.run_id),
            &json!({}),
            200,
        )
        .await;
    assert!(plain.changes.added.is_empty() && plain.changes.deleted.is_empty());

    // A later edit makes a revert a conflict that names the file…
    let file = format!("/admin/apps/{}/draft/files/later.txt", app.id);
    admin.put_bytes(&file, "edited after", Some("*"), 200).await;
    let conflict = admin
        .post::<_, Value>(
            &format!("{}/runs/{}/revert", base(&app), run.run_id),
            &json!({}),
            409,
        )
        .await;
    let details = assert_error(&conflict, "CODING_AGENT_REVISION_CONFLICT");
    assert_eq!(details["files"], json!(["later.txt"]));
    // …unless forced.
    let forced: Restored = admin
        .post(
            &format!("{}/runs/{}/revert", base(&app), run.run_id),
            &json!({"force": true}),
            200,
        )
        .await;
    assert_eq!(forced.changes.deleted, ["later.txt"]);
    assert_eq!(draft_bytes(&admin, &app).await, before);
    let bad = admin
        .post::<_, Value>(
            &format!("{}/runs/{}/revert", base(&app), run.run_id),
            &json!({"forse": true}),
            400,
        )
        .await;
    assert_eq!(assert_error(&bad, "VALIDATION_FAILED")["field"], "forse");
}

async fn restore_is_refused_during_a_run(kind: StoreKind) {
    let server = TestServer::with_script(kind, SLOW_TEXT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "slow"})).await;
    let list: CheckpointList = admin.get(&format!("{}/checkpoints", base(&app)), 200).await;
    let refused = admin
        .post::<_, Value>(
            &format!(
                "{}/checkpoints/{}/restore",
                base(&app),
                list.checkpoints[0].id
            ),
            &json!({}),
            409,
        )
        .await;
    let details = assert_error(&refused, "CODING_AGENT_RUN_ACTIVE");
    assert_eq!(details["run_id"], run.run_id.to_string());
    let draft: Draft = admin
        .get(&format!("/admin/apps/{}/draft", app.id), 200)
        .await;
    assert_eq!(draft.revision, 1);
    let refused = admin
        .post::<_, Value>(
            &format!("{}/runs/{}/revert", base(&app), run.run_id),
            &json!({}),
            409,
        )
        .await;
    assert_error(&refused, "CODING_AGENT_RUN_ACTIVE");
    EventReader::open(&admin, &run.stream_url, None)
        .await
        .rest()
        .await;
}

async fn chat_history_reaches_the_model(kind: StoreKind) {
    let server = TestServer::with_script(kind, THREE_ANSWERS).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let first = finished_run(&admin, &app, json!({"input": "Question one?"})).await;
    let session = first.chat_session_id;
    finished_run(
        &admin,
        &app,
        json!({"input": "Question two?", "chat_session_id": session}),
    )
    .await;
    let third = finished_run(
        &admin,
        &app,
        json!({"input": "Question three?", "chat_session_id": session}),
    )
    .await;
    assert_eq!(third.summary.as_deref(), Some("Answer three."));

    let requests = server.model().requests();
    assert_eq!(requests.len(), 3);
    let conversation: Vec<(String, String)> = requests[2].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("user", "Question one?"),
        ("assistant", "Answer one."),
        ("user", "Question two?"),
        ("assistant", "Answer two."),
        ("user", "Question three?"),
    ]
    .iter()
    .map(|(r, c)| ((*r).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(conversation, expected);

    let detail: ChatSessionDetail = admin
        .get(&format!("{}/chat-sessions/{session}", base(&app)), 200)
        .await;
    assert_eq!(detail.messages.len(), 6);
    assert_eq!(detail.session.title, "Question one?");
    assert!(detail.messages.iter().all(|m| m.run_id.is_some()));
    let list: ChatSessionList = admin
        .get(&format!("{}/chat-sessions", base(&app)), 200)
        .await;
    assert_eq!(list.sessions.len(), 1);
}

async fn sessions_are_private_to_their_user(kind: StoreKind) {
    let server = TestServer::with_script(kind, THREE_ANSWERS).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let run = finished_run(&admin, &app, json!({"input": "mine"})).await;
    // Another admin can reach the app but not the first admin's conversation.
    let other: TokenCreated = admin
        .post(
            "/admin/tokens",
            &json!({"user": "ops", "role": "admin"}),
            201,
        )
        .await;
    let other = admin.with_token(&other.token);
    let hidden = other
        .get::<Value>(
            &format!("{}/chat-sessions/{}", base(&app), run.chat_session_id),
            404,
        )
        .await;
    assert_error(&hidden, "NOT_FOUND");
    let list: ChatSessionList = other
        .get(&format!("{}/chat-sessions", base(&app)), 200)
        .await;
    assert!(list.sessions.is_empty());
    let refused = other
        .post::<_, Value>(
            &format!("{}/runs", base(&app)),
            &json!({"input": "x", "chat_session_id": run.chat_session_id}),
            404,
        )
        .await;
    assert_error(&refused, "NOT_FOUND");
    let garbage = admin
        .get::<Value>(&format!("{}/chat-sessions/not-a-uuid", base(&app)), 404)
        .await;
    assert_error(&garbage, "NOT_FOUND");
}
