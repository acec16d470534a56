//! One run on a ready server: create a titled session, follow its events from before the
//! prompt is sent, prompt it, and translate until it goes idle — or until draftsmith ends
//! it: cancel, a retry streak past the bound, the step limit, a dead server, or a closed
//! sink. Steering messages that arrived meanwhile become the session's next prompt. A
//! broken event stream is replaced by polling the session's messages.

mod follow;
mod poll;

use std::time::{Duration, Instant};

use draftsmith_core::{Diagnostic, ErrorCode, EventBody, EventError};
use draftsmith_engine::{EventSink, Job, ModelCall, Outcome, Spending};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::client::{ClientError, OpencodeClient, PromptBody};
use crate::config::Faults;
use crate::prompt::{prompt_body, steering_body};
use crate::server::OpencodeServer;
use crate::stream::{SessionEvents, StreamItem};
use crate::translate::{Emitted, Translator};
use crate::wire::{Event, MessageWithParts, SessionStatus};

/// The title every session gets (a titled session spares the model a title request).
pub(crate) const SESSION_TITLE: &str = "draftsmith run";
/// Longest wait for the abort call when cancelling (cancel must end within a second).
const ABORT_WAIT: Duration = Duration::from_millis(700);
/// How long the session may stay idle with its last message unsettled (a step asking for
/// tools, no answer yet) before the run ends anyway.
const IDLE_CONFIRM: Duration = Duration::from_secs(5);
/// How long polling may keep failing before the server counts as lost (an external server
/// has no process to watch).
const POLL_GIVE_UP: Duration = Duration::from_secs(20);
/// How often the server's process is checked.
const LIVENESS: Duration = Duration::from_millis(500);
/// What a refused permission request tells the model.
const PERMISSION_REFUSAL: &str = "draftsmith answers permission requests automatically and refuses them: nobody can approve them during a run";

/// The run's limits and policy.
#[derive(Debug, Clone)]
pub struct RunLimits {
    /// How long a model call may keep being retried.
    pub max_retry: Duration,
    /// Fail on an edit failure no later edit repaired.
    pub fail_on_unrecovered_edit: bool,
    /// The polling period after the event stream is lost.
    pub poll_interval: Duration,
    /// Fault injection.
    pub faults: Faults,
    /// What the model gate sees of the provider, when the server reaches it through one.
    pub upstream: Option<crate::gate::Health>,
}

/// Upstream failures in a row after which a run fails, as the native engine gives up after
/// its third attempt.
pub const UPSTREAM_ATTEMPTS: u32 = 3;

/// What a run produced besides its outcome.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    /// From the prompt being sent to the first answer text (ms).
    pub first_token_ms: Option<u64>,
    /// Model calls made.
    pub steps: usize,
    /// Whether the event stream was replaced by polling.
    pub polled: bool,
    /// What ended the run, for diagnostics.
    pub ended_by: String,
    /// Whether the run's session was made ahead, after the server's previous run.
    pub session_ahead: bool,
}

/// The run loop's state.
struct Run<'a> {
    client: &'a OpencodeClient,
    server: &'a OpencodeServer,
    sink: &'a dyn EventSink,
    session: String,
    translator: Translator,
    stats: RunStats,
    prompted: Instant,
    idle_since: Option<Instant>,
    /// An idle event arrived but the session's messages did not confirm it yet.
    idle_unconfirmed: bool,
    poll_failing_since: Option<Instant>,
    pending: Vec<Diagnostic>,
    /// The run's pinned model, which its calls are accounted to.
    model: String,
    /// Model calls reported to the sink so far.
    calls: usize,
    /// The sink said the run's budget is spent.
    budget_spent: bool,
}

/// Runs `job` on `server` to its end; returns the outcome, the transcript and the stats.
pub async fn run_session(
    server: &OpencodeServer,
    job: &Job,
    workspace: std::path::PathBuf,
    limits: &RunLimits,
    sink: &dyn EventSink,
    cancel: &CancellationToken,
) -> (Outcome, String, RunStats) {
    let client = server.client();
    let ahead = server.take_session_made_ahead().await;
    let session_ahead = ahead.is_some();
    let session = match ahead {
        Some(session) => Ok(session),
        None => client.create_session(SESSION_TITLE).await,
    };
    let session = match session {
        Ok(session) => session.id,
        Err(err) => {
            let outcome = failed(
                ErrorCode::CodingAgentOpencodeStartFailed,
                format!("could not create an OpenCode session: {err}"),
            );
            return (outcome, String::new(), RunStats::default());
        }
    };
    let mut run = Run {
        client,
        server,
        sink,
        session,
        translator: Translator::new(workspace),
        stats: RunStats {
            session_ahead,
            ..RunStats::default()
        },
        prompted: Instant::now(),
        idle_since: None,
        idle_unconfirmed: false,
        poll_failing_since: None,
        pending: Vec::new(),
        model: job.model.id.clone(),
        calls: 0,
        budget_spent: false,
    };
    let mut events = run.subscribe(limits.faults.drop_event_stream_after).await;
    let body = prompt_body(job);
    run.prompted = Instant::now();
    let (sync_prompt, mut _prompt_task) = run.send_prompt(body);
    let mut sync_prompt = Some(sync_prompt);
    let mut outcome = run
        .follow(&mut events, &mut sync_prompt, limits, job.max_steps, cancel)
        .await;
    // A message the person sent meanwhile is the session's next prompt, once this one ended.
    while matches!(outcome, Outcome::Completed { .. }) {
        let steered = job.steering.take();
        if steered.is_empty() {
            break;
        }
        run.translator.next_prompt();
        run.idle_since = None;
        run.idle_unconfirmed = false;
        let (steering, task) = run.send_prompt(steering_body(job, &steered));
        (sync_prompt, _prompt_task) = (Some(steering), task);
        outcome = run
            .follow(&mut events, &mut sync_prompt, limits, job.max_steps, cancel)
            .await;
    }
    run.report_calls().await;
    run.finish(outcome)
}

/// The answer of the synchronous prompt, which comes only once the work is over: the last
/// message it made, when the answer is one.
type SyncPrompt = oneshot::Receiver<Result<Option<MessageWithParts>, ClientError>>;

impl Run<'_> {
    /// Follows the session's events from before the prompt; `None` (polling) when the
    /// stream cannot be opened.
    async fn subscribe(&mut self, drop_after: Option<usize>) -> Option<SessionEvents> {
        let subscribed =
            SessionEvents::subscribe(self.server.events(), self.session.clone(), drop_after).await;
        match subscribed {
            Ok(events) => Some(events),
            Err(err) => {
                self.lost_stream(&err.to_string());
                None
            }
        }
    }

    /// Sends the prompt with OpenCode's synchronous call, in a task beside the loop, whose
    /// answer (the last message, once the work is over) and owner are returned. The answer
    /// comes a few milliseconds before the events of the last step, so the loop can end on
    /// it (see `follow`).
    fn send_prompt(&self, body: PromptBody) -> (SyncPrompt, AbortOnDrop) {
        let (tx, rx) = oneshot::channel();
        let client = self.client.clone();
        let session = self.session.clone();
        let task = AbortOnDrop(tokio::spawn(async move {
            let result = client.prompt_sync(&session, &body).await;
            let _ = tx.send(result);
        }));
        (rx, task)
    }

    /// Hands the model calls OpenCode completed since the last time to the sink, with the
    /// usage and cost OpenCode reported for each.
    async fn report_calls(&mut self) {
        for reported in self.translator.take_calls() {
            let call = ModelCall {
                model: self.model.clone(),
                step: self.calls,
                usage: reported.usage,
                estimate: draftsmith_core::Usage::default(),
                reported_cost_micro_usd: reported.cost_micro_usd,
                ms: reported.ms,
            };
            self.calls += 1;
            if self.sink.model_call(call).await == Spending::Spent {
                self.budget_spent = true;
            }
        }
    }

    /// The run's result once the loop ended: the outcome, the transcript, the stats.
    fn finish(mut self, outcome: Outcome) -> (Outcome, String, RunStats) {
        self.stats.steps = self.translator.steps();
        if self.stats.ended_by.is_empty() {
            self.stats.ended_by = match &outcome {
                Outcome::Cancelled => "cancel (or a closed sink)".into(),
                Outcome::Paused { reason } => reason.clone(),
                Outcome::Failed { error } => error.message.chars().take(200).collect(),
                Outcome::Completed { .. } => "completed".into(),
            };
        }
        (outcome, self.translator.transcript(), self.stats)
    }
}

/// Aborts a helper task when the run that owns it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one turn of the loop decided.
enum Step {
    Continue(Vec<Emitted>),
    Idle(Vec<Emitted>),
    End(Outcome),
}

fn failed(code: ErrorCode, message: String) -> Outcome {
    Outcome::Failed {
        error: EventError {
            code,
            message,
            field: None,
            details: None,
        },
    }
}
