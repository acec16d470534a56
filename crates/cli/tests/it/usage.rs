//! Usage and cost over real HTTP with the scripted model reporting usage: per call and per
//! run, exact; a call without reported usage estimated and marked; the terminal event's
//! `usage`; `GET /admin/usage` sums that equal the runs' totals; builders see only their own.

use draftsmith_core::api::{ModelCallRecord, Run, TokenCreated, UsageReport};
use draftsmith_core::{EventBody, RunStatus, UsageTotals};
use draftsmith_engine::{ModelSettings, PriceSettings};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use serde_json::json;

use crate::both_stores;
use crate::runs::{new_app, start_run};

pub const USAGE: &str = include_str!("../fixtures/scripts/usage.json");

both_stores!(
    usage_is_recorded_per_call_and_per_run,
    usage_report_sums_to_the_runs_and_builders_see_their_own,
);

/// $2 in, $10 out, $0.50 cached input per million tokens: micro-dollars per token 2, 10, 0.5.
pub fn priced_server_config(model: &MockModel) -> draftsmith_service::config::Config {
    let mut config = config_for_model(&model.base_url());
    let settings = ModelSettings {
        prices: Some(PriceSettings {
            input: 2.0,
            output: 10.0,
            cached_input: Some(0.5),
            cache_write: None,
        }),
        ..ModelSettings::default()
    };
    config.models.settings.insert("mock/coder".into(), settings);
    config
}

pub async fn usage_server(kind: StoreKind) -> TestServer {
    let model = MockModel::start(Script::from_json(USAGE).unwrap())
        .await
        .unwrap();
    let mut server = TestServer::start_with(kind, priced_server_config(&model)).await;
    server.model = Some(model);
    server
}

/// Runs the usage script on a new app of `client`'s; the ended run.
async fn finished_run(client: &ApiClient) -> (Run, Option<UsageTotals>) {
    let app = new_app(client, "static").await;
    let run = start_run(client, &app, json!({"input": "Use some tokens"})).await;
    let events = collect(client, &run.stream_url, None).await;
    let terminal = events.last().unwrap();
    assert!(
        matches!(terminal.body, EventBody::RunCompleted { .. }),
        "{terminal:?}"
    );
    let usage = terminal.body.usage().copied();
    let path = format!("/admin/apps/{}/coding-agent/runs/{}", app.id, run.run_id);
    (client.get(&path, 200).await, usage)
}

async fn usage_is_recorded_per_call_and_per_run(kind: StoreKind) {
    let server = usage_server(kind).await;
    let admin = server.admin();
    let (run, terminal_usage) = finished_run(&admin).await;
    assert_eq!(run.status, RunStatus::Completed);
    let calls: Vec<ModelCallRecord> = admin
        .get(
            &format!(
                "/admin/apps/{}/coding-agent/runs/{}/model-calls",
                run.app_id, run.run_id
            ),
            200,
        )
        .await;
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(calls.iter().map(|c| c.step).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(calls.iter().all(|c| c.model == "mock/coder"));

    // Reported calls: exactly what the provider said, priced from the configured table.
    let first = &calls[0];
    assert!(!first.estimated);
    assert_eq!(
        (
            first.usage.input_tokens,
            first.usage.output_tokens,
            first.usage.cache_read_tokens
        ),
        (1000, 50, 200)
    );
    assert_eq!(first.cost_micro_usd, 1000 * 2 + 50 * 10 + 100);
    let last = &calls[2];
    assert_eq!(
        (
            last.usage.input_tokens,
            last.usage.output_tokens,
            last.usage.cache_read_tokens
        ),
        (500, 20, 1000)
    );
    assert_eq!(last.cost_micro_usd, 500 * 2 + 20 * 10 + 500);
    let reported: Vec<_> = server
        .model()
        .requests()
        .iter()
        .map(|r| {
            r.usage
                .map(|u| (u.input_tokens, u.output_tokens, u.cache_read_tokens))
        })
        .collect();
    assert_eq!(
        reported,
        [Some((1000, 50, 200)), None, Some((500, 20, 1000))],
        "the provider reported the first and last calls only"
    );

    // The silent call: counted by an estimate, marked, priced like any other.
    let middle = &calls[1];
    assert!(middle.estimated);
    assert!(middle.usage.input_tokens > 0 && middle.usage.output_tokens > 0);
    assert_eq!(middle.usage.cache_read_tokens, 0);
    assert_eq!(
        middle.cost_micro_usd,
        middle.usage.input_tokens * 2 + middle.usage.output_tokens * 10
    );

    // The run's totals are the calls' sums, on the run and on its terminal event.
    let mut sum = UsageTotals::default();
    for call in &calls {
        sum.add_call(&call.usage, call.cost_micro_usd, call.estimated);
    }
    assert_eq!(sum.model_calls, 3);
    assert_eq!(sum.estimated_calls, 1);
    assert_eq!(run.usage, sum);
    assert_eq!(terminal_usage, Some(sum));
}

async fn usage_report_sums_to_the_runs_and_builders_see_their_own(kind: StoreKind) {
    let server = usage_server(kind).await;
    let admin = server.admin();
    let bob: TokenCreated = admin
        .post(
            "/admin/tokens",
            &json!({"user": "bob", "role": "builder"}),
            201,
        )
        .await;
    let bob = admin.with_token(&bob.token);
    let (admins_run, _) = finished_run(&admin).await;
    let (bobs_run, _) = finished_run(&bob).await;
    let mut both = admins_run.usage;
    both.add_totals(&bobs_run.usage);

    for group in ["user", "app", "model", "day"] {
        let report: UsageReport = admin
            .get(&format!("/admin/usage?group_by={group}"), 200)
            .await;
        let mut sum = UsageTotals::default();
        for row in &report.rows {
            sum.add_totals(&row.totals);
        }
        assert_eq!(sum, both, "group_by={group}");
        assert_eq!(report.total, both, "group_by={group}");
    }
    let by_user: UsageReport = admin.get("/admin/usage?group_by=user", 200).await;
    let keys: Vec<(&str, u64)> = by_user
        .rows
        .iter()
        .map(|r| (r.key.as_str(), r.runs))
        .collect();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.contains(&("admin", 1)) && keys.contains(&("bob", 1)),
        "{keys:?}"
    );
    let by_model: UsageReport = admin.get("/admin/usage?group_by=model", 200).await;
    assert_eq!(by_model.rows.len(), 1);
    assert_eq!(
        (by_model.rows[0].key.as_str(), by_model.rows[0].runs),
        ("mock/coder", 2)
    );
    let by_app: UsageReport = admin.get("/admin/usage?group_by=app", 200).await;
    let apps: Vec<String> = by_app.rows.iter().map(|r| r.key.clone()).collect();
    assert!(
        apps.contains(&admins_run.app_id.to_string())
            && apps.contains(&bobs_run.app_id.to_string())
    );
    let by_day: UsageReport = admin.get("/admin/usage?group_by=day", 200).await;
    let today = draftsmith_core::Timestamp::now().to_rfc3339();
    assert_eq!(by_day.rows[0].key, today[..10]);

    // A builder sees only their own usage, however they group it.
    for group in ["user", "app", "model", "day"] {
        let report: UsageReport = bob
            .get(&format!("/admin/usage?group_by={group}"), 200)
            .await;
        assert_eq!(report.user_id.as_deref(), Some("bob"));
        assert_eq!(report.total, bobs_run.usage, "group_by={group}");
    }
    let own: UsageReport = bob.get("/admin/usage?group_by=user", 200).await;
    assert_eq!(own.rows.len(), 1);
    assert_eq!(own.rows[0].key, "bob");

    // The window: nothing before it, nothing after it, everything inside it.
    let future = "2999-01-01T00:00:00Z";
    let empty: UsageReport = admin.get(&format!("/admin/usage?from={future}"), 200).await;
    assert!(empty.rows.is_empty());
    assert_eq!(empty.total, UsageTotals::default());
    let past: UsageReport = admin
        .get(
            "/admin/usage?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z",
            200,
        )
        .await;
    assert_eq!(past.total, both);
    let bad: serde_json::Value = admin.get("/admin/usage?group_by=planet", 400).await;
    draftsmith_testkit::client::assert_error(&bad, "VALIDATION_FAILED");
    // A period that ends before it starts holds nothing.
    let backwards: serde_json::Value = admin
        .get(
            &format!("/admin/usage?from={future}&to=2000-01-01T00:00:00Z"),
            200,
        )
        .await;
    assert_eq!(backwards["rows"], serde_json::json!([]));
    assert_eq!(backwards["total"]["cost_micro_usd"], 0);
}
