//! draftsmith's own agent loop: stream a model turn, turn its text into `assistant.delta`
//! events (reasoning never), run the tool calls it asks for, feed the results back (with
//! any steering message the person sent meanwhile), and stop on a final answer (unless a
//! message arrived during it), an error, cancellation or the step limit.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use draftsmith_core::{CacheMode, Diagnostic, ErrorCode, EventBody, EventError};
use draftsmith_tools::tool_specs;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

mod compact;
mod estimate;
mod prompt;
mod tools;

use crate::context::{Budget, cap_outputs};
use compact::{Window, keep_inside};
pub use prompt::{bound, contract_context, named_paths, system_prompt};
use prompt::{history_messages, prompt_parts};
use tools::tool_round;

use crate::engine::{Engine, EventSink, Finished, Job, ModelCall, Outcome, Spending};
use crate::model::{
    ChatRequest, FinishReason, Message, ModelError, ModelEvent, Part, Speaker, ToolCall, ToolDef,
    Usage,
};

/// How often a retryable model failure is retried before the run fails.
const MODEL_ATTEMPTS: u32 = 3;
/// Longest wait between retries, whatever `retry-after` says.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Tokens a model turn may generate for its answer (thinking comes on top).
const MAX_TOKENS: u32 = 8_192;

/// The native engine; stateless, one per service.
#[derive(Debug, Default, Clone)]
pub struct NativeEngine;

/// Why a turn stopped early.
enum TurnError {
    Cancelled,
    Closed,
    Model(ModelError),
}

impl From<ModelError> for TurnError {
    /// A provider that saw the cancel first answers `Cancelled`: that is the run's
    /// cancellation, never a model failure.
    fn from(err: ModelError) -> Self {
        match err {
            ModelError::Cancelled => Self::Cancelled,
            other => Self::Model(other),
        }
    }
}

/// What one model turn produced.
struct Turn {
    text: String,
    calls: Vec<ToolCall>,
    /// Thinking and redacted thinking blocks, in order, kept for the provider.
    thinking: Vec<Part>,
    usage: Option<Usage>,
    /// The run's budget was spent by this turn's call.
    spent: bool,
}

impl Turn {
    /// Bytes the model generated: text, tool calls and thinking.
    fn output_bytes(&self) -> usize {
        let calls: usize = self
            .calls
            .iter()
            .map(|c| c.name.len() + c.arguments.len())
            .sum();
        self.text.len() + calls + estimate::parts_bytes(&self.thinking)
    }
}

#[async_trait]
impl Engine for NativeEngine {
    /// Its tools reach the workspace only through `Job::tools`; its first request needs
    /// none of it.
    fn works_ahead_of_workspace(&self) -> bool {
        true
    }

    async fn run(&self, job: Job, sink: &dyn EventSink, cancel: CancellationToken) -> Finished {
        let mut transcript = Vec::new();
        let outcome = drive(&job, sink, &cancel, &mut transcript).await;
        Finished {
            outcome,
            transcript: transcript.join("\n\n"),
            ready_ms: None,
        }
    }
}

async fn drive(
    job: &Job,
    sink: &dyn EventSink,
    cancel: &CancellationToken,
    transcript: &mut Vec<String>,
) -> Outcome {
    let tools: Vec<ToolDef> = tool_specs()
        .iter()
        .map(|s| ToolDef {
            name: s.function_name.to_owned(),
            description: s.description.to_owned(),
            input_schema: s.input_schema.clone(),
        })
        .collect();
    let mut messages = history_messages(&job.history);
    messages.push(Message {
        speaker: Speaker::User,
        parts: prompt_parts(job),
    });
    let system = format!(
        "{}\n\n{}",
        system_prompt(&job.template),
        contract_context(&job.contract)
    );
    let shape = chat_request(job, &system, &[], &tools);
    let mut window = Window::new(Budget::of(job.model.facts.context_window, &shape));
    for step in 0..job.max_steps {
        if let Err(outcome) = keep_inside(job, sink, cancel, &mut messages, &mut window, step).await
        {
            return outcome;
        }
        let request = chat_request(job, &system, &messages, &tools);
        let turn = match step_turn(job, step, request, sink, cancel, transcript).await {
            Ok(turn) => turn,
            Err(outcome) => return outcome,
        };
        if turn.calls.is_empty() {
            // A message that arrived while the model answered gets one more turn.
            let steered = job.steering.take();
            if steered.is_empty() {
                return Outcome::Completed { summary: turn.text };
            }
            let mut parts = turn.thinking.clone();
            parts.push(Part::Text { text: turn.text });
            messages.push(Message {
                speaker: Speaker::Assistant,
                parts,
            });
            messages.push(Message {
                speaker: Speaker::User,
                parts: steered
                    .into_iter()
                    .map(|text| Part::Text { text })
                    .collect(),
            });
            continue;
        }
        // An assistant turn with tool use starts with its thinking, as received.
        let mut parts = turn.thinking.clone();
        if !turn.text.is_empty() {
            parts.push(Part::Text {
                text: turn.text.clone(),
            });
        }
        parts.extend(turn.calls.iter().cloned().map(Part::ToolCall));
        messages.push(Message {
            speaker: Speaker::Assistant,
            parts,
        });
        let mut results = Vec::new();
        for call in &turn.calls {
            if cancel.is_cancelled() {
                return Outcome::Cancelled;
            }
            match tool_round(job, cancel, call, sink).await {
                Some(result) => results.push(result),
                None => return Outcome::Cancelled,
            }
        }
        cap_outputs(&mut results, &window.budget);
        // What the person sent meanwhile goes with the tool results, after them.
        results.extend(
            job.steering
                .take()
                .into_iter()
                .map(|text| Part::Text { text }),
        );
        messages.push(Message {
            speaker: Speaker::User,
            parts: results,
        });
        if cancel.is_cancelled() {
            return Outcome::Cancelled;
        }
        if turn.spent {
            // The step's tools ran; the budget stops the run before the next model call.
            return Outcome::Paused {
                reason: "budget".into(),
            };
        }
    }
    Outcome::Paused {
        reason: "step_limit".into(),
    }
}

/// One model turn of step `step`: streamed, its usage reported, its text kept in the
/// transcript and sent as the assistant's message; the run's outcome when it cannot go on.
async fn step_turn(
    job: &Job,
    step: usize,
    request: ChatRequest,
    sink: &dyn EventSink,
    cancel: &CancellationToken,
    transcript: &mut Vec<String>,
) -> Result<Turn, Outcome> {
    let message_id = format!("msg_{}_{step}", prompt::message_stamp());
    let mut streamed = String::new();
    let clock = Instant::now();
    let prompt_tokens = estimate::prompt_tokens(&request);
    let mut result = model_turn(job, request, &message_id, sink, cancel, &mut streamed).await;
    if let Ok(turn) = &mut result {
        let estimate = match turn.usage {
            Some(_) => Usage::default(),
            None => estimate::usage(prompt_tokens, turn.output_bytes()),
        };
        let call = ModelCall {
            model: job.model.id.clone(),
            step,
            usage: turn.usage,
            estimate,
            reported_cost_micro_usd: None,
            ms: clock.elapsed().as_millis() as u64,
        };
        turn.spent = sink.model_call(call).await == Spending::Spent;
    }
    if result.is_err() && !streamed.is_empty() {
        // Keep what was already shown, so a cancelled or failed run has its partial answer.
        transcript.push(streamed);
    }
    let turn = match result {
        Ok(turn) => turn,
        Err(TurnError::Cancelled | TurnError::Closed) => return Err(Outcome::Cancelled),
        Err(TurnError::Model(err)) => {
            return Err(Outcome::Failed {
                error: EventError {
                    code: ErrorCode::CodingAgentModelError,
                    message: err.to_string(),
                    field: None,
                    details: None,
                },
            });
        }
    };
    if !turn.text.is_empty() {
        transcript.push(turn.text.clone());
        let event = EventBody::AssistantMessage {
            message_id,
            text: turn.text.clone(),
        };
        if sink.emit(event, Vec::new()).await.is_err() {
            return Err(Outcome::Cancelled);
        }
    }
    Ok(turn)
}

/// The request for the next step: the model's limits, reasoning setting and caching.
fn chat_request(job: &Job, system: &str, messages: &[Message], tools: &[ToolDef]) -> ChatRequest {
    let facts = &job.model.facts;
    let answer = MAX_TOKENS.min(facts.max_output_tokens);
    let thinking_budget = facts.thinking_budget.filter(|b| *b > 0);
    let max_tokens = match thinking_budget {
        Some(budget) => budget
            .saturating_add(answer)
            .min(facts.max_output_tokens.max(budget.saturating_add(1))),
        None => answer,
    };
    ChatRequest {
        model: job.model.name.clone(),
        system: system.to_owned(),
        messages: messages.to_vec(),
        tools: tools.to_vec(),
        max_tokens,
        thinking_budget,
        reasoning_effort: facts.reasoning_effort.clone(),
        cache_markers: facts.caching == CacheMode::Marker,
    }
}

/// Streams one model turn, retrying retryable failures that happen before any output.
async fn model_turn(
    job: &Job,
    request: ChatRequest,
    message_id: &str,
    sink: &dyn EventSink,
    cancel: &CancellationToken,
    streamed: &mut String,
) -> Result<Turn, TurnError> {
    let mut attempt = 0;
    let mut diagnostics = Vec::new();
    loop {
        attempt += 1;
        let result = stream_once(
            job,
            request.clone(),
            message_id,
            sink,
            cancel,
            &mut diagnostics,
            streamed,
        )
        .await;
        // Only a turn that showed nothing yet may be retried: text already streamed
        // cannot be taken back.
        let produced = !streamed.is_empty();
        match result {
            Err(TurnError::Model(err))
                if err.is_retryable() && !produced && attempt < MODEL_ATTEMPTS =>
            {
                let wait = match &err {
                    ModelError::Http {
                        retry_after: Some(after),
                        ..
                    } => (*after).min(MAX_BACKOFF),
                    _ => Duration::from_millis(250 * 2u64.pow(attempt)),
                };
                tracing::warn!(attempt, error = %err, "model call failed; retrying");
                diagnostics.push(Diagnostic {
                    code: "model_retry".into(),
                    message: format!(
                        "attempt {attempt} failed ({err}); retrying in {} ms",
                        wait.as_millis()
                    ),
                });
                tokio::select! {
                    _ = cancel.cancelled() => return Err(TurnError::Cancelled),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            other => return other,
        }
    }
}

async fn stream_once(
    job: &Job,
    request: ChatRequest,
    message_id: &str,
    sink: &dyn EventSink,
    cancel: &CancellationToken,
    diagnostics: &mut Vec<Diagnostic>,
    streamed: &mut String,
) -> Result<Turn, TurnError> {
    let mut stream = tokio::select! {
        _ = cancel.cancelled() => return Err(TurnError::Cancelled),
        started = job.model.provider.stream(request, cancel.clone()) => started?,
    };
    let mut turn = Turn {
        text: String::new(),
        calls: Vec::new(),
        thinking: Vec::new(),
        usage: None,
        spent: false,
    };
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Err(TurnError::Cancelled),
            next = stream.next() => next,
        };
        match next {
            None => {
                return Err(TurnError::Model(ModelError::MalformedStream(
                    "the stream ended before the turn finished".into(),
                )));
            }
            Some(Err(err)) => return Err(err.into()),
            Some(Ok(ModelEvent::TextDelta { text })) => {
                if text.is_empty() {
                    continue;
                }
                streamed.push_str(&text);
                turn.text.push_str(&text);
                let event = EventBody::AssistantDelta {
                    delta: text,
                    message_id: message_id.to_owned(),
                };
                sink.emit(event, std::mem::take(diagnostics))
                    .await
                    .map_err(|_| TurnError::Closed)?;
            }
            // Reasoning is the model's scratchpad: it never reaches the answer stream.
            Some(Ok(ModelEvent::ReasoningDelta { .. })) => {}
            Some(Ok(ModelEvent::Thinking {
                thinking,
                signature,
            })) => turn.thinking.push(Part::Thinking {
                thinking,
                signature,
            }),
            Some(Ok(ModelEvent::RedactedThinking { data })) => {
                turn.thinking.push(Part::RedactedThinking { data });
            }
            Some(Ok(ModelEvent::ToolCall(call))) => {
                turn.calls.push(call);
            }
            Some(Ok(ModelEvent::Finished { reason, usage })) => {
                if reason == FinishReason::Length && turn.calls.is_empty() {
                    tracing::warn!("model turn stopped at its token limit");
                }
                turn.usage = usage;
                return Ok(turn);
            }
        }
    }
}
