//! `GET /metrics` over real HTTP: the Prometheus text format as `promtool check metrics`
//! reads it, admin-only, off when configured off, and its series moving exactly as a
//! scripted run with reported usage happens (each service counts with its own recorder).

use std::io::Write;
use std::process::{Command, Stdio};

use draftsmith_core::api::{Run, TokenCreated};
use draftsmith_core::{EventBody, RunStatus};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::client::assert_error;
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use serde_json::{Value, json};

use crate::both_stores;
use crate::runs::{new_app, start_run};
use crate::usage::{USAGE, priced_server_config, usage_server};

both_stores!(
    metrics_parse_and_move_as_a_run_happens,
    metrics_need_an_admin_and_can_be_turned_off,
);

/// The scrape's text, as an admin.
async fn scrape(client: &ApiClient) -> String {
    let response = client
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The sum of every sample of `name` carrying all of `labels` (0 when there is none).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

/// `promtool check metrics` on `text`: its lint and parse problems, or none.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (Debian's prometheus package; ./scripts/setup installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics refused the exposition:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn metrics_parse_and_move_as_a_run_happens(kind: StoreKind) {
    let server = usage_server(kind).await;
    let admin = server.admin();
    let before = scrape(&admin).await;
    promtool_check(&before);
    let completed = [("engine", "native"), ("status", "completed")];
    assert_eq!(sample(&before, "draftsmith_runs_total", &completed), 0.0);

    let app = new_app(&admin, "static").await;
    let run = start_run(&admin, &app, json!({"input": "Use some tokens"})).await;
    let events = collect(&admin, &run.stream_url, None).await;
    assert!(matches!(
        events.last().unwrap().body,
        EventBody::RunCompleted { .. }
    ));
    let run: Run = admin
        .get(
            &format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id),
            200,
        )
        .await;
    assert_eq!(run.status, RunStatus::Completed);
    let after = scrape(&admin).await;
    promtool_check(&after);

    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(moved("draftsmith_runs_total", &completed), 1.0, "{after}");
    assert_eq!(
        moved(
            "draftsmith_runs_total",
            &[("engine", "native"), ("status", "failed")]
        ),
        0.0
    );
    // Three model calls, one run of three steps, each timed.
    let mock = [("provider", "mock")];
    assert_eq!(moved("draftsmith_model_calls_total", &mock), 3.0);
    assert_eq!(
        moved("draftsmith_model_call_duration_seconds_count", &mock),
        3.0
    );
    let native = [("engine", "native")];
    assert_eq!(moved("draftsmith_run_steps_count", &native), 1.0);
    assert_eq!(moved("draftsmith_run_steps_sum", &native), 3.0);
    assert_eq!(moved("draftsmith_run_duration_seconds_count", &native), 1.0);
    assert_eq!(
        moved("draftsmith_run_first_token_seconds_count", &native),
        1.0
    );
    // Tokens and cost by model: exactly the run's recorded totals (the estimate included).
    let model = ("model", "mock/coder");
    let tokens = |kind: &str| moved("draftsmith_model_tokens_total", &[model, ("kind", kind)]);
    assert_eq!(tokens("input"), run.usage.input_tokens as f64);
    assert_eq!(tokens("output"), run.usage.output_tokens as f64);
    assert_eq!(tokens("cache_read"), run.usage.cache_read_tokens as f64);
    assert!(run.usage.input_tokens >= 1500, "{:?}", run.usage);
    assert_eq!(
        moved("draftsmith_model_cost_microdollars_total", &[model]),
        run.usage.cost_micro_usd as f64
    );
    assert!(run.usage.cost_micro_usd > 0);
    // The store's hot path was timed: each batch of the run's events once. How many
    // events share a batch depends on how busy the writer was, not on the run.
    let batches = moved(
        "draftsmith_store_operation_duration_seconds_count",
        &[("op", "append_events")],
    );
    assert!(
        (1.0..=events.len() as f64).contains(&batches),
        "{} events: {after}",
        events.len()
    );
    // Nothing runs or waits now; the stream that followed the run has closed.
    assert_eq!(sample(&after, "draftsmith_active_runs", &[]), 0.0);
    assert_eq!(sample(&after, "draftsmith_queue_depth", &[]), 0.0);
    assert_eq!(sample(&after, "draftsmith_sse_followers", &[]), 0.0);
    // The run's chat sandbox is kept warm after it completed.
    assert_eq!(sample(&after, "draftsmith_warm_sandboxes", &[]), 1.0);
}

async fn metrics_need_an_admin_and_can_be_turned_off(kind: StoreKind) {
    let server = usage_server(kind).await;
    let admin = server.admin();
    let bob: TokenCreated = admin
        .post(
            "/admin/tokens",
            &json!({"user": "bob", "role": "builder"}),
            201,
        )
        .await;
    let status_and_body = |client: ApiClient| async move {
        let response = client
            .request(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    let (status, body) = status_and_body(admin.with_token(&bob.token)).await;
    assert_eq!(status, 403);
    assert_error(&body, "FORBIDDEN");
    let (status, body) = status_and_body(server.anonymous()).await;
    assert_eq!(status, 401);
    assert_error(&body, "UNAUTHORIZED");
    drop(server);

    let model = MockModel::start(Script::from_json(USAGE).unwrap())
        .await
        .unwrap();
    let mut config = priced_server_config(&model);
    config.metrics.enabled = false;
    let off = TestServer::start_with(kind, config).await;
    let (status, body) = status_and_body(off.admin()).await;
    assert_eq!(status, 404);
    assert_error(&body, "NOT_FOUND");
}
