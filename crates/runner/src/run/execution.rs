//! What one run's task owns, and what every run shares; the phases are `impl` blocks on
//! [`Execution`] in their own modules.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use draftsmith_contract::AgentContract;
use draftsmith_core::api::{App, MessageAttachment, Run};
use draftsmith_engine::{ResolvedModel, Steering};
use draftsmith_sandbox::SandboxId;
use draftsmith_store::Store;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::error::{Ending, RunError};
use crate::bus::EventBus;
use crate::config::RunnerConfig;
use crate::engines::Engines;

/// What every run of a runner shares.
#[derive(Clone)]
pub(crate) struct Services {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn EventBus>,
    pub controller: Arc<dyn draftsmith_sandbox::SandboxController>,
    pub engines: Engines,
    pub metrics: crate::metrics::Metrics,
}

/// How a run is stopped, and by whom.
#[derive(Clone, Default)]
pub(crate) struct Stop {
    pub cancel: CancellationToken,
    pub by: Arc<Mutex<Option<String>>>,
}

/// What the run was given when it was created.
pub(crate) struct Assignment {
    pub run: Run,
    pub app: App,
    pub model: ResolvedModel,
    /// The app's selected-agent contract, as loaded when the run was created.
    pub contract: AgentContract,
    /// The run's own budget.
    pub budget: draftsmith_core::api::RunBudget,
    /// Where its model calls' times come from.
    pub clock: crate::budget::Clock,
    /// The attachments of the run's prompt, when the run's creation started its chat: the
    /// chat then holds nothing before that prompt, and its history is not read.
    pub opening: Option<Vec<MessageAttachment>>,
}

/// When the run started, how long creating it took, and the API's own timing to come.
pub(crate) struct Clock {
    pub started: Instant,
    pub create_ms: u64,
    pub api_ms: oneshot::Receiver<u64>,
}

/// Everything one run's task owns.
pub(crate) struct Execution {
    pub(super) services: Services,
    pub(super) task: Assignment,
    /// The chat's sandbox, derived once from the run's chat session.
    pub(super) sandbox: SandboxId,
    pub(super) config: RunnerConfig,
    pub(super) stop: Stop,
    pub(super) clock: Clock,
    /// Messages the person sends while the run works, for its engine.
    pub(super) steering: Steering,
}

impl Execution {
    /// A run's task, its sandbox derived from its chat session.
    pub(crate) fn new(
        services: Services,
        task: Assignment,
        config: RunnerConfig,
        stop: Stop,
        clock: Clock,
        steering: Steering,
    ) -> Self {
        let sandbox = SandboxId::for_chat(task.run.chat_session_id);
        Self {
            services,
            task,
            sandbox,
            config,
            stop,
            clock,
            steering,
        }
    }

    /// The ending of a run stopped by its cancel token: cancelled by a person, or failed
    /// as an orphan when the service is shutting down.
    pub(crate) fn cancelled(&self) -> Ending {
        match self.stop.by.lock().ok().and_then(|b| b.clone()) {
            Some(by) => Ending::Cancelled { by },
            None => Ending::Failed(RunError::Orphaned),
        }
    }
}
