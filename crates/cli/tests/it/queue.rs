//! The server-side prompt queue over real HTTP: prompts queued while a run works start in
//! order with no client connected, survive a cancel, a failure (`continue` or `hold`) and
//! the death of their instance, and are another user's 404.

use std::time::{Duration, Instant};

use draftsmith_core::api::{App, QueueState, QueuedPrompt, Run, RunList, TokenCreated};
use draftsmith_core::{ErrorCode, RunStatus};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::{ApiClient, StoreKind, TestDb, TestServer};
use serde_json::{Value, json};

use crate::both_stores;
use crate::instances::{config_file, start_with};
use crate::runs::{new_app, start_run};

pub const QUEUE_SCRIPT: &str = include_str!("../fixtures/scripts/queue.json");

both_stores!(
    three_queued_prompts_start_in_order_with_no_client,
    cancel_keeps_the_queue,
    a_failed_run_holds_the_queue_until_resumed,
    queue_is_validated_like_a_run_and_private,
    move_and_delete_while_prompts_start,
    a_killed_instances_queue_goes_on_after_a_restart,
);

fn runs_url(app: &App) -> String {
    format!("/admin/apps/{}/coding-agent/runs", app.id)
}

fn queue_url(app: &App) -> String {
    format!("/admin/apps/{}/coding-agent/queue", app.id)
}

/// Queues `input` (202) while the app is busy.
pub async fn enqueue(client: &ApiClient, app: &App, input: &str) -> QueuedPrompt {
    client
        .post(
            &runs_url(app),
            &json!({"input": input, "when_busy": "queue"}),
            202,
        )
        .await
}

/// Waits until the app has `count` runs, all ended, and an empty queue; oldest first.
pub async fn wait_drained(client: &ApiClient, app: &App, count: usize) -> Vec<Run> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list: RunList = client.get(&runs_url(app), 200).await;
        let queue: QueueState = client.get(&queue_url(app), 200).await;
        let ended = list.runs.iter().all(|r| r.status.is_terminal());
        if list.runs.len() == count && ended && queue.items.is_empty() {
            return list.runs.into_iter().rev().collect();
        }
        assert!(
            Instant::now() < deadline,
            "queue never drained: {} runs, {} queued",
            list.runs.len(),
            queue.items.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn summary(runs: &[Run]) -> Vec<(&str, RunStatus)> {
    runs.iter().map(|r| (r.input.as_str(), r.status)).collect()
}

async fn three_queued_prompts_start_in_order_with_no_client(kind: StoreKind) {
    let server = TestServer::with_script(kind, QUEUE_SCRIPT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let first = start_run(&admin, &app, json!({"input": "talk slowly"})).await;
    for (n, input) in ["one", "two", "three"].into_iter().enumerate() {
        let item = enqueue(&admin, &app, input).await;
        assert_eq!(item.position, n as i64 + 1);
        assert_eq!(item.input, input);
        assert_eq!(item.resolved_model_id, "mock/coder");
        assert_eq!(item.engine.as_str(), "native");
    }
    let queue: QueueState = admin.get(&queue_url(&app), 200).await;
    assert_eq!(queue.items.len(), 3);
    assert!(!queue.held);
    // Without the field, a busy app still answers 409 as it always did.
    let refused: Value = admin
        .post(&runs_url(&app), &json!({"input": "now"}), 409)
        .await;
    assert_error(&refused, "CODING_AGENT_RUN_ACTIVE");
    // Nobody follows a stream: the server starts each prompt when the previous one ends.
    let runs = wait_drained(&admin, &app, 4).await;
    assert_eq!(runs[0].run_id, first.run_id);
    assert_eq!(
        summary(&runs),
        [
            ("talk slowly", RunStatus::Completed),
            ("one", RunStatus::Completed),
            ("two", RunStatus::Completed),
            ("three", RunStatus::Completed)
        ]
    );
    for pair in runs.windows(2) {
        assert!(pair[0].ended_at <= pair[1].started_at, "runs overlapped");
    }
}

async fn cancel_keeps_the_queue(kind: StoreKind) {
    let server = TestServer::with_script(kind, QUEUE_SCRIPT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let first = start_run(&admin, &app, json!({"input": "talk slowly"})).await;
    enqueue(&admin, &app, "one").await;
    enqueue(&admin, &app, "two").await;
    let cancel = format!("{}/{}/cancel", runs_url(&app), first.run_id);
    admin.post::<_, Value>(&cancel, &json!({}), 202).await;
    let runs = wait_drained(&admin, &app, 3).await;
    assert_eq!(
        runs[0].status,
        RunStatus::Cancelled,
        "the cancelled run ended otherwise: {:?}",
        runs[0].error
    );
    assert_eq!(
        summary(&runs),
        [
            ("talk slowly", RunStatus::Cancelled),
            ("one", RunStatus::Completed),
            ("two", RunStatus::Completed)
        ]
    );
}

async fn a_failed_run_holds_the_queue_until_resumed(kind: StoreKind) {
    let model = MockModel::start(Script::from_json(QUEUE_SCRIPT).unwrap())
        .await
        .unwrap();
    let mut config = config_for_model(&model.base_url());
    config.coding_agent.queue_after_failure = draftsmith_service::config::QueueAfterFailure::Hold;
    let server = TestServer::start_with(kind, config).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let first = start_run(&admin, &app, json!({"input": "fail later"})).await;
    enqueue(&admin, &app, "one").await;
    enqueue(&admin, &app, "two").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        let run: Run = admin
            .get(&format!("{}/{}", runs_url(&app), first.run_id), 200)
            .await;
        let queue: QueueState = admin.get(&queue_url(&app), 200).await;
        if run.status == RunStatus::Failed && queue.held {
            break queue;
        }
        assert!(Instant::now() < deadline, "never held: {:?}", run.status);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(held.items.len(), 2);
    // Held means held: several maintenance ticks later nothing has started.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let list: RunList = admin.get(&runs_url(&app), 200).await;
    assert_eq!(list.runs.len(), 1);
    let resumed: QueueState = admin
        .post(&format!("{}/resume", queue_url(&app)), &json!({}), 202)
        .await;
    assert!(!resumed.held);
    let runs = wait_drained(&admin, &app, 3).await;
    assert_eq!(
        summary(&runs),
        [
            ("fail later", RunStatus::Failed),
            ("one", RunStatus::Completed),
            ("two", RunStatus::Completed)
        ]
    );
    drop(model);
}

async fn queue_is_validated_like_a_run_and_private(kind: StoreKind) {
    let server = TestServer::with_script(kind, QUEUE_SCRIPT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    let first = start_run(&admin, &app, json!({"input": "talk slowly"})).await;
    let bad_model: Value = admin
        .post(
            &runs_url(&app),
            &json!({"input": "x", "model_id": "nope/none", "when_busy": "queue"}),
            400,
        )
        .await;
    assert_error(&bad_model, "CODING_AGENT_MODEL_UNAVAILABLE");
    let bad_engine: Value = admin
        .post(
            &runs_url(&app),
            &json!({"input": "x", "engine": "warp", "when_busy": "queue"}),
            400,
        )
        .await;
    assert_error(&bad_engine, "VALIDATION_FAILED");
    let bad_mode: Value = admin
        .post(
            &runs_url(&app),
            &json!({"input": "x", "when_busy": "later"}),
            400,
        )
        .await;
    assert_error(&bad_mode, "VALIDATION_FAILED");
    let blank: Value = admin
        .post(
            &runs_url(&app),
            &json!({"input": "  ", "when_busy": "queue"}),
            400,
        )
        .await;
    assert_error(&blank, "VALIDATION_FAILED");
    let no_session: Value = admin
        .post(
            &runs_url(&app),
            &json!({"input": "x", "when_busy": "queue",
                    "chat_session_id": "00000000-0000-4000-8000-000000000000"}),
            404,
        )
        .await;
    assert_error(&no_session, "NOT_FOUND");
    let mine = enqueue(&admin, &app, "mine").await;
    let queue: QueueState = admin.get(&queue_url(&app), 200).await;
    assert_eq!(queue.items, std::slice::from_ref(&mine));

    // Another builder can neither see nor change the queue.
    let bob: TokenCreated = admin
        .post(
            "/admin/tokens",
            &json!({"user": "bob", "role": "builder"}),
            201,
        )
        .await;
    let bob = admin.with_token(&bob.token);
    let item = format!("{}/{}", queue_url(&app), mine.id);
    assert_error(&bob.get::<Value>(&queue_url(&app), 404).await, "NOT_FOUND");
    assert_error(&bob.delete(&item, None, 404).await, "NOT_FOUND");
    let moved: Value = bob
        .post(&format!("{item}/move"), &json!({"position": 1}), 404)
        .await;
    assert_error(&moved, "NOT_FOUND");
    let resumed: Value = bob
        .post(&format!("{}/resume", queue_url(&app)), &json!({}), 404)
        .await;
    assert_error(&resumed, "NOT_FOUND");
    let queued: Value = bob
        .post(
            &runs_url(&app),
            &json!({"input": "x", "when_busy": "queue"}),
            404,
        )
        .await;
    assert_error(&queued, "NOT_FOUND");
    let queue: QueueState = admin.get(&queue_url(&app), 200).await;
    assert_eq!(queue.items, [mine]);
    // Nothing refused was persisted.
    let runs = wait_drained(&admin, &app, 2).await;
    assert_eq!(runs[0].run_id, first.run_id);
    assert_eq!(runs[1].input, "mine");
}

async fn move_and_delete_while_prompts_start(kind: StoreKind) {
    let server = TestServer::with_script(kind, QUEUE_SCRIPT).await;
    let admin = server.admin();
    let app = new_app(&admin, "static").await;
    start_run(&admin, &app, json!({"input": "talk slowly"})).await;
    let mut items = Vec::new();
    for input in ["a", "b", "c", "d", "e"] {
        items.push(enqueue(&admin, &app, input).await);
    }
    let item = |n: usize| format!("{}/{}", queue_url(&app), items[n].id);
    let moved: QueueState = admin
        .post(
            &format!("{}/move", item(4)),
            &json!({"before": items[0].id}),
            200,
        )
        .await;
    let order: Vec<&str> = moved.items.iter().map(|i| i.input.as_str()).collect();
    assert_eq!(order, ["e", "a", "b", "c", "d"]);
    let after: QueueState =
        serde_json::from_value(admin.delete(&item(0), None, 200).await).unwrap();
    assert_eq!(after.items.len(), 4);
    let both: Value = admin
        .post(
            &format!("{}/move", item(3)),
            &json!({"before": items[0].id, "position": 1}),
            400,
        )
        .await;
    assert_error(&both, "VALIDATION_FAILED");
    // Moves and removals race the starts: whatever already started is a 404, nothing
    // runs twice and nothing removed runs.
    let removed = admin
        .request(reqwest::Method::DELETE, &item(3))
        .send()
        .await
        .unwrap();
    assert!([200, 404].contains(&removed.status().as_u16()));
    let removed_d = removed.status().as_u16() == 200;
    let moved = admin
        .request(reqwest::Method::POST, &format!("{}/move", item(2)))
        .json(&json!({"position": 1}))
        .send()
        .await
        .unwrap();
    let last_order: Option<Vec<String>> = match moved.status().as_u16() {
        200 => {
            let queue: QueueState = moved.json().await.unwrap();
            Some(queue.items.into_iter().map(|i| i.input).collect())
        }
        404 => None,
        other => panic!("move answered {other}"),
    };
    let runs = wait_drained(&admin, &app, if removed_d { 4 } else { 5 }).await;
    let inputs: Vec<&str> = runs.iter().map(|r| r.input.as_str()).collect();
    assert_eq!(inputs[0], "talk slowly");
    assert!(!inputs.contains(&"a"), "a removed prompt ran");
    let mut sorted = inputs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), inputs.len(), "a prompt ran twice");
    // What was still queued when the move answered ran in exactly that order, last.
    if let Some(order) = last_order {
        assert_eq!(inputs[inputs.len() - order.len()..], order[..]);
    }
}

async fn a_killed_instances_queue_goes_on_after_a_restart(kind: StoreKind) {
    let model = MockModel::start(Script::from_json(QUEUE_SCRIPT).unwrap())
        .await
        .unwrap();
    let db = TestDb::new(kind).await;
    let config = config_file(db.dir.path(), &model);
    let data = db.dir.path().join("node");
    let first = start_with(&db, &data, &config, &[]).await;
    let app = new_app(&first.admin(), "static").await;
    let run = start_run(&first.admin(), &app, json!({"input": "talk slowly"})).await;
    enqueue(&first.admin(), &app, "one").await;
    enqueue(&first.admin(), &app, "two").await;
    first.kill().await;

    // No client asks for anything but the state: the restarted instance ends the orphan
    // and runs the queue.
    let second = start_with(&db, &data, &config, &[]).await;
    let admin = second.admin();
    let runs = wait_drained(&admin, &app, 3).await;
    assert_eq!(runs[0].run_id, run.run_id);
    assert_eq!(
        runs[0].error.as_ref().map(|e| e.code),
        Some(ErrorCode::CodingAgentRunOrphaned)
    );
    assert_eq!(
        summary(&runs)[1..],
        [("one", RunStatus::Completed), ("two", RunStatus::Completed)]
    );
}

/// A second instance on the same PostgreSQL runs the queue of one that died.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_survivor_runs_a_dead_instances_queue() {
    let model = MockModel::start(Script::from_json(QUEUE_SCRIPT).unwrap())
        .await
        .unwrap();
    let db = TestDb::new(StoreKind::Postgres).await;
    let config = config_file(db.dir.path(), &model);
    let doomed = start_with(&db, &db.dir.path().join("doomed"), &config, &[]).await;
    let survivor = start_with(&db, &db.dir.path().join("survivor"), &config, &[]).await;
    let app = new_app(&doomed.admin(), "static").await;
    let run = start_run(&doomed.admin(), &app, json!({"input": "talk slowly"})).await;
    enqueue(&doomed.admin(), &app, "one").await;
    enqueue(&survivor.admin(), &app, "two").await;
    doomed.kill().await;
    let runs = wait_drained(&survivor.admin(), &app, 3).await;
    assert_eq!(runs[0].run_id, run.run_id);
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert_eq!(
        summary(&runs)[1..],
        [("one", RunStatus::Completed), ("two", RunStatus::Completed)]
    );
}
