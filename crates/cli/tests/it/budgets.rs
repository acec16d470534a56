//! Budgets over real HTTP: a run's `max_cost` / `max_tokens` pause it at the step boundary
//! after the call that reached them, its work landed like any paused run's; a request above
//! the ceiling is refused; a user's spent daily or monthly budget answers 429
//! `CODING_AGENT_BUDGET_EXCEEDED` until the period ends (the runner's clock injected).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use draftsmith_core::api::{App, Draft, Run};
use draftsmith_core::{EventBody, RunStatus, Timestamp};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::both_stores;
use crate::runs::new_app;
use crate::usage::{USAGE, priced_server_config};

both_stores!(
    a_run_budget_pauses_at_the_step_boundary,
    a_spent_user_budget_is_429_until_its_period_ends,
);

/// One answer, 1,000 tokens in and 100 out: 3,000 micro-dollars at the test's prices.
const ONE_ANSWER: &str = r#"{"scenarios": [{"name": "one", "turns": [
    {"steps": [{"text": "Answered."}], "usage": {"input_tokens": 1000, "output_tokens": 100}}
]}]}"#;

async fn server_with(
    kind: StoreKind,
    script: &str,
    edit: impl FnOnce(&mut draftsmith_service::Config),
) -> TestServer {
    let model = MockModel::start(Script::from_json(script).unwrap())
        .await
        .unwrap();
    let mut config = priced_server_config(&model);
    edit(&mut config);
    let mut server = TestServer::start_with(kind, config).await;
    server.model = Some(model);
    server
}

/// Runs the script with `body` on `app` to its end: the run, its terminal event.
async fn run_to_end(client: &ApiClient, app: &App, body: Value) -> (Run, EventBody) {
    let run: Run = client
        .post(
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
            &body,
            201,
        )
        .await;
    let events = collect(client, &run.stream_url, None).await;
    let path = format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id);
    (
        client.get(&path, 200).await,
        events.last().unwrap().body.clone(),
    )
}

async fn a_run_budget_pauses_at_the_step_boundary(kind: StoreKind) {
    let server = server_with(kind, USAGE, |c| {
        c.budgets.run_max_cost_ceiling = Some(100_000)
    })
    .await;
    let admin = server.admin();

    // The first call costs 2,600 micro-dollars; the second (the write) crosses 2,601, so
    // the run pauses once that step's tool ran, and the file it wrote lands.
    let app = new_app(&admin, "static").await;
    let body = json!({"input": "Spend a little", "max_cost": 2_601});
    let (run, terminal) = run_to_end(&admin, &app, body).await;
    assert_eq!(run.status, RunStatus::Paused);
    match &terminal {
        EventBody::RunPaused { reason, usage } => {
            assert_eq!(reason, "budget");
            assert_eq!(usage.as_ref(), Some(&run.usage));
        }
        other => panic!("not paused: {other:?}"),
    }
    assert_eq!(
        run.usage.model_calls, 2,
        "no model call after the budget was reached"
    );
    assert!(run.usage.cost_micro_usd >= 2_601);
    assert_eq!(run.input_params["budget"]["max_cost"], 2_601);
    let draft: Draft = admin
        .get(&format!("/admin/apps/{}/draft", app.id), 200)
        .await;
    assert!(
        draft.files.iter().any(|f| f.path == "src/Usage.jsx"),
        "the paused run's work landed"
    );
    let events = collect(&admin, &run.stream_url, None).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.body.event_type()).collect();
    assert_eq!(
        kinds[kinds.len() - 3..],
        ["draft.synced", "checkpoint.created", "run.paused"]
    );

    // Tokens: 1,000 + 50 + 200 cached after the first call reach 1,250 at once.
    let app = new_app(&admin, "static").await;
    let (run, _) = run_to_end(&admin, &app, json!({"input": "Count", "max_tokens": 1_250})).await;
    assert_eq!(run.status, RunStatus::Paused);
    assert_eq!(run.usage.model_calls, 1);

    // Asking above the configured ceiling is invalid, and nothing is persisted.
    let refused: Value = admin
        .post(
            &format!("/admin/apps/{}/coding-agent/runs", app.id),
            &json!({"input": "Spend a lot", "max_cost": 100_001}),
            400,
        )
        .await;
    let details = assert_error(&refused, "VALIDATION_FAILED");
    assert_eq!(details["field"], "max_cost");
}

fn at(rfc3339: &str) -> i64 {
    serde_json::from_value::<Timestamp>(json!(rfc3339))
        .unwrap()
        .as_micros()
}

async fn a_spent_user_budget_is_429_until_its_period_ends(kind: StoreKind) {
    // A run costs 3,000 micro-dollars: one spends the day, two the month.
    let server = server_with(kind, ONE_ANSWER, |c| {
        c.budgets.user_daily_cost = Some(1);
        c.budgets.user_monthly_cost = Some(5_000);
    })
    .await;
    let now = Arc::new(AtomicI64::new(at("2026-06-15T12:00:00Z")));
    let clock = now.clone();
    server.state.runner.set_clock(Arc::new(move || {
        Timestamp::from_micros(clock.load(Ordering::SeqCst))
    }));
    let admin = server.admin();
    let (first, _) = run_to_end(
        &admin,
        &new_app(&admin, "static").await,
        json!({"input": "one"}),
    )
    .await;
    assert_eq!(first.usage.cost_micro_usd, 3_000);

    let app = new_app(&admin, "static").await;
    let create = format!("/admin/apps/{}/coding-agent/runs", app.id);
    let refused = |expected_budget: &'static str, resets: &'static str| {
        let admin = admin.clone();
        let create = create.clone();
        async move {
            let response = admin
                .request(Method::POST, &create)
                .json(&json!({"input": "more"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 429);
            assert!(response.headers().get("retry-after").is_some());
            let body: Value = response.json().await.unwrap();
            let details = assert_error(&body, "CODING_AGENT_BUDGET_EXCEEDED");
            assert_eq!(details["budget"], expected_budget);
            assert_eq!(details["resets_at"], resets);
        }
    };
    refused("user_daily", "2026-06-16T00:00:00Z").await;
    let runs: Value = admin.get(&format!("{create}?limit=5"), 200).await;
    assert_eq!(
        runs["runs"].as_array().unwrap().len(),
        0,
        "a refused run persists nothing"
    );

    // Midnight: a new day's budget; the second run spends the month's.
    now.store(at("2026-06-16T00:00:00Z"), Ordering::SeqCst);
    let (second, _) = run_to_end(&admin, &app, json!({"input": "two"})).await;
    assert_eq!(second.status, RunStatus::Completed);
    now.store(at("2026-06-17T09:00:00Z"), Ordering::SeqCst);
    refused("user_monthly", "2026-07-01T00:00:00Z").await;

    // Another user's budget is their own.
    let bob: draftsmith_core::api::TokenCreated = admin
        .post(
            "/admin/tokens",
            &json!({"user": "bob", "role": "builder"}),
            201,
        )
        .await;
    let bob = admin.with_token(&bob.token);
    let bobs_app = new_app(&bob, "static").await;
    let (bobs, _) = run_to_end(&bob, &bobs_app, json!({"input": "mine"})).await;
    assert_eq!(bobs.status, RunStatus::Completed);

    now.store(at("2026-07-01T00:00:00Z"), Ordering::SeqCst);
    let (third, _) = run_to_end(&admin, &app, json!({"input": "three"})).await;
    assert_eq!(third.status, RunStatus::Completed);
}
