//! Issue #3: orchestration time per agent step and per run, against the scripted model
//! with zero delay, on SQLite and PostgreSQL. The baseline is the same model requests sent
//! straight to the mock by the engine's own provider client (`OpenAiProvider`): raw model
//! round trips, without the orchestration (runner, store, event log, SSE) around them.

use std::cell::RefCell;
use std::time::Duration;

use anyhow::{Context, bail};
use draftsmith_core::api::App;
use draftsmith_engine::model::ChatRequest;
use draftsmith_engine::providers::openai::OpenAiProvider;
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::server::config_for_model;
use draftsmith_testkit::{ApiClient, StoreKind, TestServer};
use serde_json::{Value, json};

use crate::api::{complete_run, follow, new_app, start_run};
use crate::phases::{Clock, Phases, TimedRun};
use crate::replay::{chat_request, play};
use crate::report::{line, medians_interleaved, wait_for_quiet};

/// Model turns that each call `list`, before the final text turn.
const TOOL_TURNS: usize = 20;
/// Timed runs per measurement (each on a fresh app: an app has one active run at a time);
/// enough that a median of runs of a few milliseconds is not a hiccup of this machine.
const RUNS: usize = 15;
const STEPS_PROMPT: &str = "bench-steps: look around, again and again";
const ONE_PROMPT: &str = "bench-one: just answer";

pub async fn run() -> anyhow::Result<()> {
    println!(
        "== runs: orchestration time per agent step and per run (scripted model, no delay) =="
    );
    wait_for_quiet().await;
    let model = MockModel::start(script()?).await?;
    let provider = OpenAiProvider::new(model.base_url(), None, reqwest::Client::new());
    for kind in [StoreKind::Sqlite, StoreKind::Postgres] {
        let server = TestServer::start_with(kind, config_for_model(&model.base_url())).await;
        let admin = server.admin();
        println!("-- {kind:?}");
        let steps = TOOL_TURNS + 1;
        let (run, raw, phases) = measure(&admin, &model, &provider, STEPS_PROMPT, steps).await?;
        line(
            &format!("run of {steps} steps, POST → terminal event"),
            run,
            &format!("raw round trips of its {steps} requests"),
            raw,
        );
        let per_step = u32::try_from(steps)?;
        line(
            "orchestration per step, (run − raw) / steps",
            run.saturating_sub(raw) / per_step,
            "raw round trip per step",
            raw / per_step,
        );
        phases.print("");
        let (run, raw, phases) = measure(&admin, &model, &provider, ONE_PROMPT, 1).await?;
        line(
            "run of 1 text step, POST → terminal event",
            run,
            "one raw model call",
            raw,
        );
        phases.print("");
        server.shutdown().await;
    }
    let violations = model.violations();
    if !violations.is_empty() {
        bail!("the scripted model saw invariant violations: {violations:?}");
    }
    Ok(())
}

/// Median wall time of a run of `prompt` (expected to make `turns` model requests), median
/// time of sending those requests raw, and where the runs' time went.
async fn measure(
    admin: &ApiClient,
    model: &MockModel,
    provider: &OpenAiProvider,
    prompt: &str,
    turns: usize,
) -> anyhow::Result<(Duration, Duration, Phases)> {
    let mut apps: Vec<App> = Vec::with_capacity(RUNS + 1);
    for i in 0..=RUNS {
        apps.push(new_app(admin, &format!("bench {i}")).await?);
    }
    // A warm-up run whose requests, as the mock recorded them, become the baseline.
    let warm = apps.pop().context("no app")?;
    let before = model.requests().len();
    complete_run(admin, &warm, prompt).await?;
    let sent = bodies_since(model, before);
    if sent.len() != turns {
        bail!(
            "the run sent {} model requests, expected {turns}",
            sent.len()
        );
    }
    let requests = sent
        .iter()
        .map(chat_request)
        .collect::<anyhow::Result<Vec<ChatRequest>>>()?;
    let before = model.requests().len();
    play(provider, &requests).await?;
    if bodies_since(model, before) != sent {
        bail!("the replayed requests differ from the ones the run sent");
    }

    let phases = RefCell::new(Phases::default());
    let (run, raw) = medians_interleaved(
        RUNS,
        |i| {
            let (app, phases) = (&apps[i], &phases);
            async move {
                let timed = timed_run(admin, model, app, prompt).await?;
                phases.borrow_mut().add(&timed);
                Ok(())
            }
        },
        |_| play(provider, &requests),
    )
    .await?;
    Ok((run, raw, phases.into_inner()))
}

/// Starts a run of `prompt` and follows it to its terminal event, which must complete it.
async fn timed_run(
    admin: &ApiClient,
    model: &MockModel,
    app: &App,
    prompt: &str,
) -> anyhow::Result<TimedRun> {
    let mut clock = Clock::start(model);
    let run = start_run(admin, app, prompt).await?;
    clock.created();
    let status = follow(admin, &run).await?;
    let timed = clock.ended();
    if status != draftsmith_core::RunStatus::Completed {
        bail!("run {} ended {status:?}, not completed", run.run_id);
    }
    Ok(timed)
}

fn bodies_since(model: &MockModel, before: usize) -> Vec<Value> {
    model
        .requests()
        .into_iter()
        .skip(before)
        .map(|r| r.body)
        .collect()
}

fn script() -> anyhow::Result<Script> {
    let list = json!({"steps": [
        {"text": "Looking around."},
        {"tool_call": {"name": "list", "arguments": {"path": "."}}}
    ]});
    let mut steps = vec![list; TOOL_TURNS];
    steps.push(json!({"steps": [{"text": "Done looking."}]}));
    let script = json!({
        "chunk_delay_ms": 0,
        "scenarios": [
            {"name": "steps", "match": {"contains": "bench-steps"}, "turns": steps},
            {"name": "one", "match": {"contains": "bench-one"},
             "turns": [{"steps": [{"text": "Here is the answer."}]}]}
        ]
    });
    Ok(Script::from_json(&script.to_string())?)
}
