//! Issue #19: orchestration time per agent step with accounting (each model call priced
//! and recorded with the run's totals) and Prometheus metrics on, against the same runs
//! with both off (`[metrics] enabled = false`, `accounting = false`), on SQLite and
//! PostgreSQL. The scripted model reports usage on every call; the goal is ≤ 1.05×.
//! `--quick` runs few iterations (a smoke test in a debug build).

use std::time::Duration;

use draftsmith_core::api::App;
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::{StoreKind, TestServer};
use serde_json::json;

use crate::api::{complete_run, new_app};
use crate::report::{line, medians_interleaved};

/// Model turns that each call `list`, before the final text turn.
const TOOL_TURNS: usize = 20;
const PROMPT: &str = "bench-accounting: look around and pay for it";

pub async fn run(quick: bool) -> anyhow::Result<()> {
    println!("== accounting: orchestration per step with accounting and metrics on vs off ==");
    let runs = if quick { 2 } else { 9 };
    let model = MockModel::start(script()?).await?;
    for kind in [StoreKind::Sqlite, StoreKind::Postgres] {
        let on = TestServer::start_with(kind, config_for_model(&model.base_url())).await;
        let mut config = config_for_model(&model.base_url());
        config.metrics.enabled = false;
        config.metrics.accounting = false;
        let off = TestServer::start_with(kind, config).await;
        let (on_admin, off_admin) = (on.admin(), off.admin());
        let mut on_apps: Vec<App> = Vec::new();
        let mut off_apps: Vec<App> = Vec::new();
        for i in 0..=runs {
            on_apps.push(new_app(&on_admin, &format!("on {i}")).await?);
            off_apps.push(new_app(&off_admin, &format!("off {i}")).await?);
        }
        // A warm-up run on each.
        complete_run(&on_admin, &on_apps[runs], PROMPT).await?;
        complete_run(&off_admin, &off_apps[runs], PROMPT).await?;
        let (with, without) = medians_interleaved(
            runs,
            |i| {
                let (admin, app) = (&on_admin, &on_apps[i]);
                async move { complete_run(admin, app, PROMPT).await }
            },
            |i| {
                let (admin, app) = (&off_admin, &off_apps[i]);
                async move { complete_run(admin, app, PROMPT).await }
            },
        )
        .await?;
        let steps = u32::try_from(TOOL_TURNS + 1)?;
        println!("-- {kind:?}");
        line(
            "per step, accounting and metrics on",
            per_step(with, steps),
            "per step, both off",
            per_step(without, steps),
        );
        on.shutdown().await;
        off.shutdown().await;
    }
    Ok(())
}

fn per_step(run: Duration, steps: u32) -> Duration {
    run / steps
}

fn script() -> anyhow::Result<Script> {
    let usage = json!({"input_tokens": 1200, "output_tokens": 40, "cache_read_input_tokens": 800});
    let list = json!({"steps": [
        {"text": "Looking around."},
        {"tool_call": {"name": "list", "arguments": {"path": "."}}}
    ], "usage": usage});
    let mut turns = vec![list; TOOL_TURNS];
    turns.push(json!({"steps": [{"text": "Done looking."}], "usage": usage}));
    let script = json!({
        "chunk_delay_ms": 0,
        "scenarios": [{"name": "accounting", "match": {"contains": "bench-accounting"}, "turns": turns}]
    });
    Ok(Script::from_json(&script.to_string())?)
}
