//! Shared helpers: the real `opencode` (the tests fail, not skip, without it), a scripted
//! model, jobs, an engine whose servers' HOMEs live in the test's temp dir, and a sink
//! that records every event.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use draftsmith_core::{Diagnostic, EventBody};
use draftsmith_engine::{
    EventSink, Job, LocalTools, ModelCall, ModelRegistry, ProviderKind, ProviderSpec, SinkClosed,
    Spending,
};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_opencode::{OpencodeConfig, OpencodeEngine, find_binary, is_running};
use tokio::sync::Notify;

/// Generous: the machine running the tests may be busy compiling.
pub const START_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest a whole scripted run may take in a test.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// The installed binary, or a failing test that says how to install it.
pub fn opencode_binary() -> PathBuf {
    match find_binary(None) {
        Ok(path) => path,
        Err(err) => panic!("OpenCode is required for these tests: {err}"),
    }
}

/// A scripted model server.
pub async fn model(script: serde_json::Value) -> MockModel {
    let script = Script::from_json(&script.to_string()).expect("valid script");
    MockModel::start(script).await.expect("mock model starts")
}

/// An engine configuration for tests: the real binary, HOMEs under `scratch`.
pub fn config(scratch: &Path) -> OpencodeConfig {
    OpencodeConfig {
        binary: Some(opencode_binary()),
        homes_dir: Some(scratch.join("homes")),
        start_timeout: START_TIMEOUT,
        ..OpencodeConfig::default()
    }
}

/// A fresh workspace directory under `scratch`.
pub fn workspace(scratch: &Path, name: &str) -> PathBuf {
    let dir = scratch.join(name);
    std::fs::create_dir_all(&dir).expect("workspace");
    dir
}

/// A job for `prompt` in `workspace`, pinned to the scripted model.
pub fn job(model: &MockModel, workspace: &Path, prompt: &str) -> Job {
    let registry = ModelRegistry::new(
        vec![ProviderSpec {
            id: "mock".into(),
            kind: ProviderKind::OpenAi,
            base_url: model.base_url(),
            api_key: Some("test-key".into()),
            missing_key_env: None,
            models: vec!["coder".into()],
            demo: false,
        }],
        "mock/coder".into(),
    );
    Job {
        prompt: prompt.into(),
        history: Vec::new(),
        workspace: workspace.to_path_buf(),
        template: "vite-react".into(),
        model: registry
            .resolve(Some("mock/coder"))
            .expect("model resolves"),
        max_steps: 20,
        max_compactions: 3,
        tools: Arc::new(LocalTools {
            workspace: workspace.to_path_buf(),
            commands: Arc::new(draftsmith_tools::LocalCommandRunner),
        }),
        contract: draftsmith_engine::AgentContract::empty(),
        attachments: Vec::new(),
        steering: Default::default(),
    }
}

/// Every event an engine emitted, in order.
#[derive(Default)]
pub struct RecordingSink {
    events: Mutex<Vec<(EventBody, Vec<Diagnostic>)>>,
    calls: Mutex<Vec<ModelCall>>,
    changed: Notify,
}

#[async_trait]
impl EventSink for RecordingSink {
    async fn emit(&self, body: EventBody, diagnostics: Vec<Diagnostic>) -> Result<(), SinkClosed> {
        self.events.lock().expect("lock").push((body, diagnostics));
        self.changed.notify_waiters();
        Ok(())
    }

    async fn model_call(&self, call: ModelCall) -> Spending {
        self.calls.lock().expect("lock").push(call);
        Spending::Within
    }
}

impl RecordingSink {
    /// The model calls reported, in order.
    pub fn calls(&self) -> Vec<ModelCall> {
        self.calls.lock().expect("lock").clone()
    }

    pub fn events(&self) -> Vec<EventBody> {
        self.events
            .lock()
            .expect("lock")
            .iter()
            .map(|(b, _)| b.clone())
            .collect()
    }

    /// All `assistant.delta` text, concatenated.
    pub fn streamed(&self) -> String {
        self.events()
            .iter()
            .filter_map(|e| match e {
                EventBody::AssistantDelta { delta, .. } => Some(delta.clone()),
                _ => None,
            })
            .collect()
    }

    /// The `assistant.message` texts.
    pub fn messages(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                EventBody::AssistantMessage { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn diagnostic_codes(&self) -> Vec<String> {
        self.events
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|(_, d)| d.iter().map(|d| d.code.clone()))
            .collect()
    }

    /// The tool events as `(type, tool, tool_call_id)`.
    pub fn tool_events(&self) -> Vec<(&'static str, String, String)> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                EventBody::ToolStarted {
                    tool, tool_call_id, ..
                }
                | EventBody::ToolCompleted {
                    tool, tool_call_id, ..
                }
                | EventBody::ToolFailed {
                    tool, tool_call_id, ..
                } => Some((e.event_type(), tool.clone(), tool_call_id.clone())),
                _ => None,
            })
            .collect()
    }

    /// Waits until some event satisfies `pred`.
    pub async fn wait_for(&self, pred: impl Fn(&EventBody) -> bool) {
        loop {
            let notified = self.changed.notified();
            if self.events().iter().any(&pred) {
                return;
            }
            notified.await;
        }
    }
}

/// Stops every server of `engine` and checks, by pid, that none survived.
pub async fn shut_down(engine: &OpencodeEngine, pids: &[u32]) {
    engine.shutdown().await;
    assert_gone(pids).await;
}

/// Fails unless none of `pids` runs any more (allowing a moment for the kill to land).
pub async fn assert_gone(pids: &[u32]) {
    for _ in 0..50 {
        if pids.iter().all(|pid| !is_running(*pid)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alive: Vec<u32> = pids.iter().copied().filter(|p| is_running(*p)).collect();
    panic!("opencode processes survived: {alive:?}");
}
