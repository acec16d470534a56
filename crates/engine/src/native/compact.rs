//! Compaction: when eliding tool outputs is not enough, one model call summarises the earlier
//! part of the run's conversation. The summary replaces those messages (so every later step
//! reuses it), and is recorded as a `context.compacted` event with what it replaced.

use std::time::Instant;

use draftsmith_core::{ErrorCode, EventBody, EventError};
use tokio_util::sync::CancellationToken;

use crate::context::{
    BYTES_PER_TOKEN, Budget, compaction_cut, elide_middle, elide_oldest_output, messages_tokens,
};
use crate::engine::{EventSink, Job, ModelCall, Outcome};
use crate::model::{Message, ModelError, Part, Speaker};
use crate::summary::{SummaryError, summarise};

/// The summariser's instructions (the scripted model recognises them by their first words).
pub const SUMMARY_INSTRUCTIONS: &str = "You condense the work log of an AI coding agent so \
    it can go on with less context. Write a concise summary of the log you are given: the \
    user's request, what was done (files read, created and changed, commands run, and why), \
    what was learned, the current state and what remains to do. Keep paths, names and \
    decisions exact. Answer with the summary only.";

/// Longest tool input or output kept in the log given to the summariser.
const LOG_PART_BYTES: usize = 2_000;

/// A run's standing against its model's window.
pub(super) struct Window {
    /// What its requests may hold.
    pub budget: Budget,
    /// Compactions done so far.
    compactions: u32,
}

impl Window {
    pub(super) fn new(budget: Budget) -> Window {
        Window {
            budget,
            compactions: 0,
        }
    }
}

/// Makes `messages` fit the window before step `step`: older tool outputs elided first, then
/// compactions up to the job's bound; a run that still does not fit fails with
/// `CODING_AGENT_CONTEXT_EXHAUSTED` (every branch either shrinks the conversation or uses up
/// a bounded allowance, so this never loops).
pub(super) async fn keep_inside(
    job: &Job,
    sink: &dyn EventSink,
    cancel: &CancellationToken,
    messages: &mut Vec<Message>,
    window: &mut Window,
    step: usize,
) -> Result<(), Outcome> {
    let budget = window.budget;
    loop {
        if budget.fits(messages) {
            return Ok(());
        }
        if elide_oldest_output(messages) {
            continue;
        }
        let summarised = window.compactions > 0;
        let cut = compaction_cut(messages, &budget, summarised);
        match cut {
            Some(cut) if window.compactions < job.max_compactions => {
                window.compactions += 1;
                let compaction = Compaction {
                    cut,
                    number: window.compactions,
                    step,
                };
                compact(job, sink, cancel, messages, &budget, compaction).await?;
            }
            _ => {
                let why = match budget.conversation() {
                    None => "the system prompt and tool definitions alone fill it".to_owned(),
                    Some(_) => format!(
                        "nothing more can be elided or summarised after {} compaction(s)",
                        window.compactions
                    ),
                };
                let details = serde_json::json!({
                    "context_window": budget.window,
                    "input_budget": budget.input,
                    "fixed_tokens": budget.fixed,
                    "conversation_tokens": messages_tokens(messages),
                    "compactions": window.compactions,
                });
                return Err(exhausted(&why, Some(details)));
            }
        }
    }
}

/// One compaction to do: which messages it replaces and which of the run's it is.
struct Compaction {
    /// Messages before this index are replaced.
    pub cut: usize,
    /// 1 for the run's first compaction.
    pub number: u32,
    /// The step it happens before, for the usage record.
    pub step: usize,
}

/// Replaces `messages[..cut]` by a summary the model writes, and reports it.
async fn compact(
    job: &Job,
    sink: &dyn EventSink,
    cancel: &CancellationToken,
    messages: &mut Vec<Message>,
    budget: &Budget,
    compaction: Compaction,
) -> Result<(), Outcome> {
    let Compaction { cut, number, step } = compaction;
    let replaced = &messages[..cut];
    let replaced_tokens = messages_tokens(replaced) as u64;
    let log = render_log(replaced);
    let clock = Instant::now();
    let written = summarise(&job.model, SUMMARY_INSTRUCTIONS, &log, cancel)
        .await
        .map_err(|err| match err {
            SummaryError::Model(ModelError::Cancelled) => Outcome::Cancelled,
            SummaryError::Model(err) => model_failed(&err),
            SummaryError::TooSmall => {
                exhausted("the model's window cannot hold a summary request", None)
            }
        })?;
    sink.model_call(ModelCall {
        model: job.model.id.clone(),
        step,
        usage: written.usage,
        estimate: match written.usage {
            Some(_) => crate::model::Usage::default(),
            None => super::estimate::usage(log.len(), written.text.len()),
        },
        reported_cost_micro_usd: None,
        ms: clock.elapsed().as_millis() as u64,
    })
    .await;
    let summary = written.text;
    // A summary may take a fifth of the room and the request a tenth, whatever their length
    // (the newest tool round takes at most three fifths: `Budget::output_bytes`).
    let room = budget.conversation().unwrap_or(0);
    let summary = elide_middle(&summary, room / 5 * BYTES_PER_TOKEN);
    let prompt = elide_middle(&job.prompt, room / 10 * BYTES_PER_TOKEN);
    let text = format!(
        "[Summary of the earlier part of this conversation ({cut} messages), written to stay \
         inside the context window.]\n{summary}\n\n[The request being worked on, verbatim:]\n{prompt}"
    );
    messages.splice(
        ..cut,
        [Message {
            speaker: Speaker::User,
            parts: vec![Part::Text { text }],
        }],
    );
    let event = EventBody::ContextCompacted {
        summary,
        replaced_messages: cut,
        replaced_tokens,
        compaction: number,
    };
    sink.emit(event, Vec::new())
        .await
        .map_err(|_| Outcome::Cancelled)
}

/// The conversation as a plain-text log for the summariser; long tool parts keep both ends.
fn render_log(messages: &[Message]) -> String {
    let mut log = String::new();
    for message in messages {
        let who = match message.speaker {
            Speaker::User => "User",
            Speaker::Assistant => "Assistant",
        };
        for part in &message.parts {
            let line = match part {
                Part::Text { text } => format!("{who}: {text}"),
                Part::ToolCall(call) => format!(
                    "Assistant called {} with {}",
                    call.name,
                    elide_middle(&call.arguments, LOG_PART_BYTES)
                ),
                Part::ToolResult {
                    content, is_error, ..
                } => {
                    let how = if *is_error { "failed" } else { "returned" };
                    format!("The tool {how}: {}", elide_middle(content, LOG_PART_BYTES))
                }
                Part::Image { media_type, .. } => format!("{who} attached an image ({media_type})"),
                Part::Thinking { .. } | Part::RedactedThinking { .. } => continue,
            };
            log.push_str(&line);
            log.push_str("\n\n");
        }
    }
    log
}

fn model_failed(err: &ModelError) -> Outcome {
    Outcome::Failed {
        error: EventError {
            code: ErrorCode::CodingAgentModelError,
            message: format!("summarising the earlier conversation failed: {err}"),
            field: None,
            details: None,
        },
    }
}

/// The run cannot be kept inside the model's window.
fn exhausted(why: &str, details: Option<serde_json::Value>) -> Outcome {
    Outcome::Failed {
        error: EventError {
            code: ErrorCode::CodingAgentContextExhausted,
            message: format!("the run does not fit the model's context window: {why}"),
            field: None,
            details,
        },
    }
}
