//! The seam between a run and whatever does its work: an [`Engine`] receives a job, reports
//! progress through an [`EventSink`], and ends with an [`Outcome`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use draftsmith_core::{Diagnostic, EventBody, EventError};
use tokio_util::sync::CancellationToken;

use crate::history::HistoryTurn;
use crate::registry::ResolvedModel;

/// Everything an engine needs for one run.
#[derive(Clone)]
pub struct Job {
    /// The person's prompt.
    pub prompt: String,
    /// Earlier turns of the chat session, already bounded.
    pub history: Vec<HistoryTurn>,
    /// The workspace the agent edits, when it is on this host; empty when the sandbox is
    /// remote (native tools reach it through `tools`; an engine that needs the directory
    /// itself fails the run).
    pub workspace: PathBuf,
    /// The app's template id, for the system prompt.
    pub template: String,
    /// The model, pinned for the whole run.
    pub model: ResolvedModel,
    /// Upper bound on model turns before the run pauses.
    pub max_steps: usize,
    /// Upper bound on the summaries the native loop may have the model write to keep the
    /// run inside the model's context window; past it the run fails with
    /// `CODING_AGENT_CONTEXT_EXHAUSTED`.
    pub max_compactions: u32,
    /// Where the native tools run: the sandbox (confined) or the local workspace.
    pub tools: Arc<dyn ToolHost>,
    /// The app's selected-agent contract, for baseline context and the contract tools.
    pub contract: draftsmith_contract::AgentContract,
    /// Files the person attached to the prompt, in order.
    pub attachments: Vec<Attachment>,
    /// Messages the person sends while the job works, taken at the next model turn.
    pub steering: crate::steering::Steering,
}

/// A file attached to a prompt: an image the model sees, or a text file it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The name it was uploaded under.
    pub name: String,
    /// Its media type (`image/png`, …, or `text/plain`).
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl Attachment {
    /// Whether it is an image (sent as an image part; needs a model with vision).
    pub fn is_image(&self) -> bool {
        self.media_type.starts_with("image/")
    }
}

/// Runs native tools against a workspace; the seam a sandbox controller fills so tools run
/// where the workspace lives, confined.
#[async_trait]
pub trait ToolHost: Send + Sync {
    /// Runs the tool the model called, with its raw arguments.
    async fn run_tool(
        &self,
        function_name: &str,
        arguments: &str,
        cancel: CancellationToken,
    ) -> draftsmith_tools::ToolOutcome;
}

/// Tools run in this process on a local directory, commands through `commands`.
pub struct LocalTools {
    /// The workspace.
    pub workspace: PathBuf,
    /// Where `run_command` executes.
    pub commands: Arc<dyn draftsmith_tools::CommandRunner>,
}

#[async_trait]
impl ToolHost for LocalTools {
    async fn run_tool(
        &self,
        function_name: &str,
        arguments: &str,
        cancel: CancellationToken,
    ) -> draftsmith_tools::ToolOutcome {
        let ctx = draftsmith_tools::ToolContext {
            workspace: self.workspace.clone(),
            cancel,
            limits: draftsmith_tools::ToolLimits::default(),
            commands: self.commands.clone(),
        };
        draftsmith_tools::run_tool(&ctx, function_name, arguments).await
    }
}

/// How a run's work ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A final answer.
    Completed {
        /// The last turn's answer.
        summary: String,
    },
    /// An error ended the work.
    Failed {
        /// What went wrong.
        error: EventError,
    },
    /// The cancel token fired.
    Cancelled,
    /// A limit stopped the work.
    Paused {
        /// e.g. `step_limit`.
        reason: String,
    },
}

/// The finished work: its outcome and every answer text the model produced, which is kept
/// as the chat's assistant message (partial when the run did not complete).
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// How it ended.
    pub outcome: Outcome,
    /// All answer text, turns separated by blank lines.
    pub transcript: String,
    /// How long the engine took to be ready for the job (OpenCode: seeding and a ready
    /// server), for the run's timings; `None` for engines with nothing to start.
    pub ready_ms: Option<u64>,
}

/// The sink refused an event: the run has ended elsewhere (cancelled, reaped).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the run no longer accepts events: {0}")]
pub struct SinkClosed(pub String);

/// One finished model call of a run, with the usage its provider reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCall {
    /// `provider/model`.
    pub model: String,
    /// The run's step (model turn) it answered, from 0.
    pub step: usize,
    /// Token counts as reported; `None` when the provider reported none.
    pub usage: Option<draftsmith_core::Usage>,
    /// The engine's own count (the window's estimate, `crate::context`, of the prompt and
    /// the answer), which stands in when the provider reported none; zero when it did.
    pub estimate: draftsmith_core::Usage,
    /// The cost the provider (or the agent) reported, in micro-dollars, when it did; a
    /// price in the model's facts takes precedence.
    pub reported_cost_micro_usd: Option<u64>,
    /// Wall time from sending the request to the end of the answer.
    pub ms: u64,
}

/// The run's budget after a model call: an engine stops at the next step boundary once it
/// is spent, ending `Paused { reason: "budget" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spending {
    /// Go on.
    Within,
    /// The run reached its cost or token limit.
    Spent,
}

/// Where an engine reports progress; the runner persists then publishes each event.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Records one event.
    async fn emit(&self, body: EventBody, diagnostics: Vec<Diagnostic>) -> Result<(), SinkClosed>;

    /// Records one finished model call and its usage, and says whether the run's budget
    /// is now spent; sinks that keep no accounts ignore it.
    async fn model_call(&self, _call: ModelCall) -> Spending {
        Spending::Within
    }
}

/// An agent implementation.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Does the job, streaming progress, until it ends or `cancel` fires.
    async fn run(&self, job: Job, sink: &dyn EventSink, cancel: CancellationToken) -> Finished;

    /// Whether `run` may start before the run's workspace is filled: everything it does
    /// there goes through `Job::tools`, which wait for the workspace. An engine that reads
    /// `Job::workspace` itself (a server of its own on it) starts once it is filled.
    fn works_ahead_of_workspace(&self) -> bool {
        false
    }

    /// A run on `model` is coming for `workspace`, whose sandbox exists but is still being
    /// filled: start what the run will need (OpenCode: its server) meanwhile. Best effort:
    /// what fails here is tried again, and reported, by `run`. Engines with nothing to
    /// start do nothing.
    async fn prepare(&self, _workspace: &Path, _model: &ResolvedModel) {}

    /// As [`Engine::prepare`], for a workspace no run waits for yet (a chat made ahead): also
    /// pay, without a model call, for what the first run would otherwise wait on.
    async fn prepare_ahead(&self, workspace: &Path, model: &ResolvedModel) {
        self.prepare(workspace, model).await;
    }

    /// The sandbox holding `workspace` is going away (a failed or orphaned run): stop what
    /// the engine keeps running for it. Called before the workspace is removed; engines
    /// that keep nothing between runs do nothing.
    async fn release(&self, _workspace: &Path) {}

    /// The service is stopping: stop everything the engine keeps running.
    async fn shutdown(&self) {}

    /// Servers the engine keeps running between runs now (for the metrics).
    fn servers(&self) -> usize {
        0
    }
}
