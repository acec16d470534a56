//! Issue #22: prompt caching. A 20-step native run against the scripted Anthropic server,
//! which simulates the provider's prompt cache (reads for a prefix it has seen with a
//! marker, writes otherwise), once with the engine's cache markers and once without. The
//! figure is the input billed at the full rate or more (uncached input plus cache writes)
//! summed over the run's calls, from the usage the server reports; the baseline is the
//! same run without markers, where all input is billed at the full rate.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, ensure};
use async_trait::async_trait;
use draftsmith_core::{CacheMode, Diagnostic, EventBody, ModelPrices, Usage};
use draftsmith_engine::{
    Engine, EventSink, Job, LocalTools, ModelRegistry, ModelSettings, NativeEngine, Outcome,
    ProviderKind, ProviderSpec, SinkClosed,
};
use draftsmith_mockmodel::{MockModel, Script};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::report::line_count;

/// Tool turns before the final answer: 20 model calls in all.
const TOOL_TURNS: usize = 19;
const MODEL: &str = "claude-sonnet-4-5";

struct Quiet;

#[async_trait]
impl EventSink for Quiet {
    async fn emit(&self, _: EventBody, _: Vec<Diagnostic>) -> Result<(), SinkClosed> {
        Ok(())
    }
}

pub async fn run() -> anyhow::Result<()> {
    println!("== caching: input billed at the full rate over a 20-step run, Anthropic markers ==");
    let cached = measure(CacheMode::Marker).await?;
    let plain = measure(CacheMode::None).await?;
    let billed = |u: &Usage| u.input_tokens + u.cache_write_tokens;
    line_count(
        "full-rate input (uncached + cache writes), cached",
        billed(&cached),
        "the same run without markers",
        billed(&plain),
        "tok",
    );
    line_count(
        "uncached input only, cached",
        cached.input_tokens,
        "the same run without markers",
        plain.input_tokens,
        "tok",
    );
    // Claude Sonnet 4.5 list prices: reads at a tenth, writes at 1.25×.
    let prices = ModelPrices {
        input: 3_000_000,
        output: 15_000_000,
        cached_input: 300_000,
        cache_write: 3_750_000,
    };
    let input_cost = |u: &Usage| {
        prices.cost_micro_usd(&Usage {
            output_tokens: 0,
            ..*u
        })
    };
    line_count(
        "input cost in micro-dollars (Sonnet prices), cached",
        input_cost(&cached),
        "the same run without markers",
        input_cost(&plain),
        "µ$",
    );
    ensure!(
        cached.prompt_tokens() > 0 && plain.cache_read_tokens == 0,
        "the scripted cache misbehaved: {cached:?} / {plain:?}"
    );
    Ok(())
}

/// The summed usage the scripted server reported over one 20-step run.
async fn measure(caching: CacheMode) -> anyhow::Result<Usage> {
    let model = MockModel::start(Script::from_json(&script().to_string())?).await?;
    let id = format!("mock/{MODEL}");
    let spec = ProviderSpec {
        id: "mock".into(),
        kind: ProviderKind::Anthropic,
        base_url: model.base_url(),
        api_key: None,
        missing_key_env: None,
        models: vec![MODEL.into()],
        demo: false,
    };
    let settings = ModelSettings {
        caching: Some(caching),
        ..ModelSettings::default()
    };
    let registry = ModelRegistry::new(vec![spec], id.clone())
        .with_settings(&BTreeMap::from([(id.clone(), settings)]))
        .map_err(|e| anyhow::anyhow!(e.0))?;
    let workspace = tempfile::tempdir()?;
    for i in 0..TOOL_TURNS {
        let body: String = (0..40)
            .map(|line| format!("export const value{i}_{line} = compute({i}, {line});\n"))
            .collect();
        std::fs::write(workspace.path().join(format!("file{i}.ts")), body)?;
    }
    let job = Job {
        prompt: "bench-caching: read every file".into(),
        history: Vec::new(),
        workspace: workspace.path().to_path_buf(),
        template: "static".into(),
        model: registry
            .resolve(Some(&id))
            .map_err(|e| anyhow::anyhow!(e.0))?,
        max_steps: TOOL_TURNS + 1,
        max_compactions: 3,
        tools: Arc::new(LocalTools {
            workspace: workspace.path().to_path_buf(),
            commands: Arc::new(draftsmith_tools::LocalCommandRunner),
        }),
        contract: draftsmith_engine::AgentContract::empty(),
        attachments: Vec::new(),
        steering: Default::default(),
    };
    let finished = NativeEngine
        .run(job, &Quiet, CancellationToken::new())
        .await;
    if !matches!(finished.outcome, Outcome::Completed { .. }) {
        bail!("the run did not complete: {:?}", finished.outcome);
    }
    let violations = model.violations();
    ensure!(
        violations.is_empty(),
        "Messages API rules broken: {violations:?}"
    );
    let requests = model.requests();
    ensure!(requests.len() == TOOL_TURNS + 1, "{} calls", requests.len());
    let mut total = Usage::default();
    for request in &requests {
        let reported = request
            .usage
            .ok_or_else(|| anyhow::anyhow!("a call without usage"))?;
        total.add(&Usage {
            input_tokens: reported.input_tokens,
            output_tokens: reported.output_tokens,
            cache_read_tokens: reported.cache_read_tokens,
            cache_write_tokens: reported.cache_write_tokens,
            reasoning_tokens: 0,
        });
    }
    Ok(total)
}

/// Each tool turn reads the next file; then a short answer.
fn script() -> serde_json::Value {
    let mut turns: Vec<serde_json::Value> = (0..TOOL_TURNS)
        .map(|i| {
            json!({"steps": [
                {"text": format!("Reading file{i}.ts.")},
                {"tool_call": {"name": "read", "arguments": {"path": format!("file{i}.ts")}}}
            ]})
        })
        .collect();
    turns.push(json!({"steps": [{"text": "Read them all."}]}));
    json!({"scenarios": [{"name": "caching", "turns": turns}]})
}
