//! The native loop against the scripted model server, which holds every Anthropic request
//! to the Messages API's rules: thinking sent back unmodified, cache markers, usage, and
//! OpenAI-compatible reasoning settings.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use draftsmith_core::{Diagnostic, EventBody};
use draftsmith_engine::{
    Engine, EventSink, Finished, Job, LocalTools, ModelCall, ModelRegistry, ModelSettings,
    NativeEngine, Outcome, ProviderKind, ProviderSpec, SinkClosed, Spending,
};
use draftsmith_mockmodel::{MockModel, RecordedRequest, Script};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Records what the engine reports.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<EventBody>>,
    pub calls: Mutex<Vec<ModelCall>>,
}

#[async_trait]
impl EventSink for Recorder {
    async fn emit(&self, body: EventBody, _: Vec<Diagnostic>) -> Result<(), SinkClosed> {
        self.events.lock().unwrap().push(body);
        Ok(())
    }

    async fn model_call(&self, call: ModelCall) -> Spending {
        self.calls.lock().unwrap().push(call);
        Spending::Within
    }
}

impl Recorder {
    pub fn deltas(&self) -> String {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                EventBody::AssistantDelta { delta, .. } => Some(delta.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A finished native run against `script`, with the model's settings.
pub struct Ran {
    pub model: MockModel,
    pub finished: Finished,
    pub sink: Recorder,
}

/// Runs the native engine on a fresh workspace holding `notes.txt`.
pub async fn run_native(
    script: &str,
    kind: ProviderKind,
    name: &str,
    settings: ModelSettings,
) -> Ran {
    run_native_with(script, kind, name, settings, Setup::default()).await
}

/// What a native test run starts with besides its script and model.
pub struct Setup {
    /// Files written into the workspace besides `notes.txt`.
    pub files: Vec<(&'static str, String)>,
    pub max_steps: usize,
    pub max_compactions: u32,
    /// Files attached to the prompt.
    pub attachments: Vec<draftsmith_engine::Attachment>,
    /// The run is cancelled before it starts.
    pub cancelled: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            files: Vec::new(),
            max_steps: 30,
            max_compactions: 3,
            attachments: Vec::new(),
            cancelled: false,
        }
    }
}

/// Runs the native engine on a fresh workspace holding `notes.txt` and `setup.files`.
pub async fn run_native_with(
    script: &str,
    kind: ProviderKind,
    name: &str,
    settings: ModelSettings,
    setup: Setup,
) -> Ran {
    let model = MockModel::start(Script::from_json(script).unwrap())
        .await
        .unwrap();
    let spec = ProviderSpec {
        id: "mock".into(),
        kind,
        base_url: model.base_url(),
        api_key: None,
        missing_key_env: None,
        models: vec![name.into()],
        demo: false,
    };
    let id = format!("mock/{name}");
    let registry = ModelRegistry::new(vec![spec], id.clone())
        .with_settings(&BTreeMap::from([(id.clone(), settings)]))
        .unwrap();
    let workspace = tempfile::tempdir().unwrap();
    std::fs::write(workspace.path().join("notes.txt"), "hello notes").unwrap();
    for (path, text) in &setup.files {
        std::fs::write(workspace.path().join(path), text).unwrap();
    }
    let job = Job {
        prompt: "Read the notes.".into(),
        history: Vec::new(),
        workspace: workspace.path().to_path_buf(),
        template: "static".into(),
        model: registry.resolve(Some(&id)).unwrap(),
        max_steps: setup.max_steps,
        max_compactions: setup.max_compactions,
        tools: Arc::new(LocalTools {
            workspace: workspace.path().to_path_buf(),
            commands: Arc::new(draftsmith_tools::LocalCommandRunner),
        }),
        contract: draftsmith_engine::AgentContract::empty(),
        attachments: setup.attachments.clone(),
        steering: Default::default(),
    };
    let sink = Recorder::default();
    let cancel = CancellationToken::new();
    if setup.cancelled {
        cancel.cancel();
    }
    let finished = NativeEngine.run(job, &sink, cancel).await;
    Ran {
        model,
        finished,
        sink,
    }
}

/// A script of `steps` tool turns, each thinking `thought {i}` (twice redacted), then an
/// answer.
pub fn tool_script(steps: usize, thinking: bool) -> String {
    let mut turns: Vec<Value> = (0..steps)
        .map(|i| {
            let mut steps = Vec::new();
            if thinking {
                steps.push(json!({"reasoning": format!("thought {i}: read the notes, \"carefully\" ✓"), "chunk": 7}));
                if i == 1 {
                    steps.push(json!({"redacted_thinking": format!("opaque {i}")}));
                }
            }
            steps.push(json!({"tool_call": {"id": format!("toolu_{i}"), "name": "read", "arguments": {"path": "notes.txt"}}}));
            json!({"steps": steps})
        })
        .collect();
    let mut last = Vec::new();
    if thinking {
        last.push(json!({"reasoning": "final thought"}));
    }
    last.push(json!({"text": "The notes say hello.", "chunk": 5}));
    turns.push(json!({"steps": last}));
    json!({"scenarios": [{"name": "tools", "turns": turns}]}).to_string()
}

fn thinking_on() -> ModelSettings {
    ModelSettings {
        thinking_budget: Some(2_048),
        ..ModelSettings::default()
    }
}

fn assistant_turns(request: &RecordedRequest) -> Vec<Vec<Value>> {
    request.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .map(|m| m["content"].as_array().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn thinking_goes_back_byte_for_byte_before_each_tool_use() {
    let ran = run_native(
        &tool_script(3, true),
        ProviderKind::Anthropic,
        "claude-sonnet-4-5",
        thinking_on(),
    )
    .await;
    assert_eq!(ran.model.violations(), Vec::<String>::new());
    assert!(matches!(ran.finished.outcome, Outcome::Completed { .. }));
    let requests = ran.model.requests();
    assert_eq!(requests.len(), 4);
    for (step, request) in requests.iter().enumerate() {
        assert_eq!(
            request.body["thinking"],
            json!({"type": "enabled", "budget_tokens": 2048})
        );
        assert!(request.body["max_tokens"].as_u64().unwrap() > 2048);
        let turns = assistant_turns(request);
        assert_eq!(turns.len(), step);
        for (i, blocks) in turns.iter().enumerate() {
            let text = format!("thought {i}: read the notes, \"carefully\" ✓");
            // What the server streamed, exactly: text and signature.
            let expected = json!({"type": "thinking", "thinking": text,
                "signature": format!("mock-sig-{:016x}", fnv(&text))});
            assert_eq!(blocks[0], expected, "step {step}, turn {i}");
            let tool_use = blocks.iter().position(|b| b["type"] == "tool_use").unwrap();
            if i == 1 {
                assert_eq!(blocks[1]["type"], "redacted_thinking");
                assert_eq!(
                    blocks[1]["data"],
                    format!("mock-redacted-{:016x}-opaque 1", fnv("opaque 1"))
                );
                assert_eq!(tool_use, 2);
            } else {
                assert_eq!(tool_use, 1);
            }
        }
    }
    // No thinking text ever reaches the answer stream.
    let deltas = ran.sink.deltas();
    assert_eq!(deltas, "The notes say hello.");
    assert!(!ran.finished.transcript.contains("thought"));
}

#[tokio::test]
async fn no_thinking_is_sent_when_it_is_disabled() {
    // The scripted model still thinks; the engine keeps it to itself.
    let ran = run_native(
        &tool_script(3, true),
        ProviderKind::Anthropic,
        "claude-sonnet-4-5",
        ModelSettings::default(),
    )
    .await;
    assert_eq!(ran.model.violations(), Vec::<String>::new());
    assert!(matches!(ran.finished.outcome, Outcome::Completed { .. }));
    for request in ran.model.requests() {
        assert!(request.body.get("thinking").is_none());
        let text = request.body.to_string();
        assert!(
            !text.contains("thought") && !text.contains("redacted"),
            "{text}"
        );
    }
    assert_eq!(ran.sink.deltas(), "The notes say hello.");
}

/// Where the `cache_control` markers of a request sit.
fn markers(body: &Value) -> Vec<String> {
    let mut at = Vec::new();
    for (i, tool) in body["tools"].as_array().unwrap().iter().enumerate() {
        if tool.get("cache_control").is_some() {
            at.push(format!("tools[{i}]"));
        }
    }
    for (i, block) in body["system"].as_array().unwrap().iter().enumerate() {
        if block.get("cache_control").is_some() {
            at.push(format!("system[{i}]"));
        }
    }
    for (i, message) in body["messages"].as_array().unwrap().iter().enumerate() {
        for (j, block) in message["content"].as_array().unwrap().iter().enumerate() {
            if block.get("cache_control").is_some() {
                at.push(format!("messages[{i}].content[{j}]"));
            }
        }
    }
    at
}

#[tokio::test]
async fn cache_markers_move_forward_and_usage_records_the_cache() {
    let ran = run_native(
        &tool_script(4, true),
        ProviderKind::Anthropic,
        "claude-sonnet-4-5",
        thinking_on(),
    )
    .await;
    assert_eq!(ran.model.violations(), Vec::<String>::new());
    let requests = ran.model.requests();
    let tools = requests[0].body["tools"].as_array().unwrap().len();
    let last_tool = format!("tools[{}]", tools - 1);
    for (step, request) in requests.iter().enumerate() {
        let at = markers(&request.body);
        assert!(at.len() <= 4, "step {step}: {at:?}");
        let messages = request.body["messages"].as_array().unwrap();
        let newest = messages.len() - 1;
        let newest_block = messages[newest]["content"].as_array().unwrap().len() - 1;
        let mut expected = vec![last_tool.clone(), "system[0]".to_owned()];
        if step > 0 {
            // The previous step's stable point, which it wrote, and the newest one.
            expected.push(format!("messages[{}].content[0]", newest - 2));
        }
        expected.push(format!("messages[{newest}].content[{newest_block}]"));
        assert_eq!(at, expected, "step {step}");
    }
    // From the second step on, each call reads what the one before wrote.
    let calls = ran.sink.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), requests.len());
    for (call, request) in calls.iter().zip(&requests) {
        let reported = request.usage.unwrap();
        let usage = call.usage.unwrap();
        assert_eq!(call.model, "mock/claude-sonnet-4-5");
        assert_eq!(
            (
                usage.input_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
                usage.output_tokens
            ),
            (
                reported.input_tokens,
                reported.cache_read_tokens,
                reported.cache_write_tokens,
                reported.output_tokens
            )
        );
    }
    assert_eq!(calls[0].usage.unwrap().cache_read_tokens, 0);
    for pair in calls.windows(2) {
        let (before, after) = (pair[0].usage.unwrap(), pair[1].usage.unwrap());
        assert_eq!(
            after.cache_read_tokens,
            before.cache_read_tokens + before.cache_write_tokens,
            "step {} reads the prefix step {} cached",
            pair[1].step,
            pair[0].step
        );
        assert!(after.cache_write_tokens > 0);
    }
}

#[tokio::test]
async fn scripted_cache_counts_reach_the_usage() {
    let script = json!({"scenarios": [{"name": "s", "turns": [
        {"steps": [{"text": "hi"}], "usage": {"input_tokens": 12, "output_tokens": 3,
            "cache_read_input_tokens": 3456, "cache_creation_input_tokens": 789}}]}]});
    let ran = run_native(
        &script.to_string(),
        ProviderKind::Anthropic,
        "claude-sonnet-4-5",
        ModelSettings::default(),
    )
    .await;
    let calls = ran.sink.calls.lock().unwrap().clone();
    let usage = calls[0].usage.unwrap();
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens
        ),
        (12, 3, 3456, 789)
    );
}

#[tokio::test]
async fn reasoning_effort_is_sent_when_set_and_only_then() {
    let effort = ModelSettings {
        reasoning_effort: Some("high".into()),
        ..ModelSettings::default()
    };
    let with = run_native(
        &tool_script(2, true),
        ProviderKind::OpenAi,
        "o4-mini",
        effort,
    )
    .await;
    assert_eq!(with.model.violations(), Vec::<String>::new());
    let requests = with.model.requests();
    assert_eq!(requests.len(), 3);
    for (step, request) in requests.iter().enumerate() {
        assert_eq!(request.body["reasoning_effort"], "high");
        assert!(request.body.get("max_tokens").is_none());
        assert!(request.body["max_completion_tokens"].as_u64().unwrap() > 0);
        // Earlier reasoning stays out of later requests.
        let text = request.body.to_string();
        assert!(!text.contains("thought"), "step {step}: {text}");
        assert!(!text.contains("reasoning_content"));
    }
    assert_eq!(with.sink.deltas(), "The notes say hello.");

    let without = run_native(
        &tool_script(2, true),
        ProviderKind::OpenAi,
        "o4-mini",
        ModelSettings::default(),
    )
    .await;
    for request in without.model.requests() {
        assert!(request.body.get("reasoning_effort").is_none());
        assert!(request.body["max_tokens"].as_u64().unwrap() > 0);
        assert!(!request.body.to_string().contains("thought"));
    }
}

#[tokio::test]
async fn self_caching_providers_get_a_stable_prefix() {
    let ran = run_native(
        &tool_script(3, false),
        ProviderKind::OpenAi,
        "gpt-4.1",
        ModelSettings::default(),
    )
    .await;
    let requests = ran.model.requests();
    for pair in requests.windows(2) {
        let (before, after) = (&pair[0].body, &pair[1].body);
        assert_eq!(before["tools"], after["tools"]);
        let earlier = before["messages"].as_array().unwrap();
        let later = after["messages"].as_array().unwrap();
        assert_eq!(
            earlier[..],
            later[..earlier.len()],
            "each request extends the last"
        );
        assert!(before.get("cache_control").is_none());
    }
    // So the server's own cache serves each earlier step.
    let calls = ran.sink.calls.lock().unwrap().clone();
    for call in &calls[1..] {
        assert!(call.usage.unwrap().cache_read_tokens > 0, "{call:?}");
    }
}

/// The scripted server's signature hash (FNV-1a, 64 bits).
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The system prompt is prose: each line starts at its first word, with no source
/// indentation carried into it.
#[test]
fn the_system_prompt_carries_no_indentation() {
    let prompt = draftsmith_engine::native::system_prompt("vite-react");
    assert!(
        prompt.contains("App template: vite-react.\nYou work"),
        "{prompt}"
    );
    assert!(
        !prompt.lines().any(|line| line.starts_with(' ')),
        "{prompt:?}"
    );
}

/// A cancel the provider sees first (its request refused as cancelled) ends the run
/// cancelled, never failed: whichever side of the race wins, many times over.
#[tokio::test]
async fn a_cancel_the_provider_sees_first_is_a_cancel_not_a_model_error() {
    for _ in 0..20 {
        let setup = Setup {
            cancelled: true,
            ..Setup::default()
        };
        let ran = run_native_with(
            &tool_script(1, false),
            ProviderKind::OpenAi,
            "coder",
            ModelSettings::default(),
            setup,
        )
        .await;
        assert_eq!(ran.finished.outcome, Outcome::Cancelled);
    }
}
