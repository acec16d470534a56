//! Fair use over real HTTP: one user's active runs across apps and run creations per
//! minute are capped with 429 `RATE_LIMITED` and `Retry-After`; an instance with every
//! sandbox busy answers 503 with `Retry-After`, or queues a prompt sent with
//! `when_busy: "queue"` until a sandbox frees; other users are unaffected by a user's cap.

use draftsmith_core::api::{QueueState, Run, TokenCreated};
use draftsmith_core::{ErrorCode, RunStatus};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_stores;
use crate::queue::{enqueue, wait_drained};
use crate::runs::new_app;

both_stores!(
    a_users_active_runs_and_creation_rate_are_capped,
    a_full_instance_answers_503,
    a_full_instance_queues_a_prompt_that_may_wait,
);

/// A turn that waits far longer than any test, so its run stays active until cancelled.
const STALLS: &str = r#"{"scenarios": [
  {"name": "quick", "match": {"contains": "QUICK"}, "turns": [{"steps": [{"text": "Done."}]}]},
  {"name": "stall", "turns": [{"steps": [{"delay_ms": 600000}, {"text": "late"}]}]}
]}"#;

async fn server_with(
    kind: StoreKind,
    edit: impl FnOnce(&mut draftsmith_service::Config),
) -> TestServer {
    let model = MockModel::start(Script::from_json(STALLS).unwrap())
        .await
        .unwrap();
    let mut config = config_for_model(&model.base_url());
    edit(&mut config);
    let mut server = TestServer::start_with(kind, config).await;
    server.model = Some(model);
    server
}

/// Tries to start a run on a new app of `client`'s: the status, `Retry-After` and body.
async fn try_start(client: &ApiClient, input: &str) -> (u16, Option<u64>, Value) {
    let app = new_app(client, "static").await;
    let response = client
        .request(
            Method::POST,
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
        )
        .json(&json!({"input": input}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, response.json().await.unwrap())
}

async fn cancel_and_wait(client: &ApiClient, run: &Value) {
    let run: Run = serde_json::from_value(run.clone()).unwrap();
    let cancel = format!(
        "/admin/apps/{}/coding-agent/runs/{}/cancel",
        run.app_id, run.run_id
    );
    let _: Run = client.post(&cancel, &json!({}), 202).await;
    collect(client, &run.stream_url, None).await;
}

async fn a_users_active_runs_and_creation_rate_are_capped(kind: StoreKind) {
    let server = server_with(kind, |c| {
        c.fair_use.user_active_runs = Some(1);
        c.fair_use.user_runs_per_minute = Some(3);
    })
    .await;
    let admin = server.admin();
    let (status, _, stalled) = try_start(&admin, "stall").await;
    assert_eq!(status, 201);

    // A second active run, on another app: refused for now, with when to retry.
    let (status, retry, body) = try_start(&admin, "stall again").await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|s| s >= 1), "{retry:?}");
    let details = assert_error(&body, "RATE_LIMITED");
    assert_eq!(details["limit"], "user_active_runs");

    // Another user is not held back by it.
    let bob: TokenCreated = admin
        .post(
            "/admin/tokens",
            &json!({"user": "bob", "role": "builder"}),
            201,
        )
        .await;
    let bob = admin.with_token(&bob.token);
    let (status, _, bobs) = try_start(&bob, "QUICK").await;
    assert_eq!(status, 201);
    let bobs: Run = serde_json::from_value(bobs).unwrap();
    collect(&bob, &bobs.stream_url, None).await;

    // Once the run ended, the next may start; the third creation of the minute is the last.
    cancel_and_wait(&admin, &stalled).await;
    let (status, _, quick) = try_start(&admin, "QUICK").await;
    assert_eq!(status, 201);
    let quick: Run = serde_json::from_value(quick).unwrap();
    let ended = collect(&admin, &quick.stream_url, None).await;
    assert!(ended.last().unwrap().body.terminal_status() == Some(RunStatus::Completed));
    let (status, _, third) = try_start(&admin, "QUICK").await;
    assert_eq!(status, 201, "the third run of the minute");
    let third: Run = serde_json::from_value(third).unwrap();
    collect(&admin, &third.stream_url, None).await;
    let (status, retry, body) = try_start(&admin, "QUICK").await;
    assert_eq!(status, 429);
    let details = assert_error(&body, "RATE_LIMITED");
    assert_eq!(details["limit"], "user_runs_per_minute");
    assert!(retry.is_some_and(|s| (1..=60).contains(&s)), "{retry:?}");
}

async fn a_full_instance_answers_503(kind: StoreKind) {
    let server = server_with(kind, |c| c.fair_use.instance_sandboxes = Some(1)).await;
    let admin = server.admin();
    let (status, _, stalled) = try_start(&admin, "stall").await;
    assert_eq!(status, 201);
    let (status, retry, body) = try_start(&admin, "QUICK").await;
    assert_eq!(status, 503);
    assert!(retry.is_some_and(|s| s >= 1), "{retry:?}");
    let details = assert_error(&body, ErrorCode::ServiceUnavailable.as_str());
    assert_eq!(details["limit"], "instance_sandboxes");
    cancel_and_wait(&admin, &stalled).await;
    let (status, _, _) = try_start(&admin, "QUICK").await;
    assert_eq!(status, 201, "a sandbox is free again");
}

async fn a_full_instance_queues_a_prompt_that_may_wait(kind: StoreKind) {
    let server = server_with(kind, |c| c.fair_use.instance_sandboxes = Some(1)).await;
    let admin = server.admin();
    let (status, _, stalled) = try_start(&admin, "stall").await;
    assert_eq!(status, 201);
    // Another, idle app: its prompt waits for the sandbox instead of a 503.
    let app = new_app(&admin, "static").await;
    let queued = enqueue(&admin, &app, "QUICK").await;
    let queue_url = format!("/admin/apps/{}/coding-agent/queue", app.id);
    // Several maintenance ticks pass while the instance is full: it stays queued.
    for _ in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let queue: QueueState = admin.get(&queue_url, 200).await;
        assert_eq!(
            queue.items.iter().map(|i| i.id).collect::<Vec<_>>(),
            [queued.id],
            "the prompt started while every sandbox was busy"
        );
    }
    cancel_and_wait(&admin, &stalled).await;
    let runs = wait_drained(&admin, &app, 1).await;
    assert_eq!(runs[0].input, "QUICK");
    assert_eq!(runs[0].status, RunStatus::Completed);
}
