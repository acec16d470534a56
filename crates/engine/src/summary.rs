//! One model call that writes a summary of a log: how a run's compaction and a chat's
//! history both replace older messages. The log is shortened in its middle until the
//! request fits the model's window, so the call itself can never overflow.

use draftsmith_core::Usage;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::context::{BYTES_PER_TOKEN, Budget, elide_middle, message_tokens};
use crate::model::{ChatRequest, Message, ModelError, ModelEvent, Part, Speaker};
use crate::registry::ResolvedModel;

/// Most tokens a summary may take.
const SUMMARY_TOKENS: u32 = 2_048;

/// Why no summary was written.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// The window cannot hold even the instructions and a shortened log.
    #[error("the model's window cannot hold a summary request")]
    TooSmall,
    /// The model call failed (not retried: the caller decides).
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A summary the model wrote, with the usage its provider reported.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The summary's text, trimmed.
    pub text: String,
    /// Token counts, when reported.
    pub usage: Option<Usage>,
}

/// Has `model` summarise `log` following `instructions`.
pub async fn summarise(
    model: &ResolvedModel,
    instructions: &str,
    log: &str,
    cancel: &CancellationToken,
) -> Result<Summary, SummaryError> {
    let request = summary_request(model, instructions, log)?;
    let mut stream = tokio::select! {
        _ = cancel.cancelled() => return Err(ModelError::Cancelled.into()),
        started = model.provider.stream(request, cancel.clone()) => started?,
    };
    let mut text = String::new();
    loop {
        let next = tokio::select! {
            _ = cancel.cancelled() => return Err(ModelError::Cancelled.into()),
            next = stream.next() => next,
        };
        match next {
            Some(Ok(ModelEvent::TextDelta { text: delta })) => text.push_str(&delta),
            Some(Ok(ModelEvent::Finished { usage, .. })) => {
                let text = text.trim().to_owned();
                return Ok(Summary { text, usage });
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err.into()),
            None => {
                return Err(ModelError::MalformedStream(
                    "the summary stream ended before the turn finished".into(),
                )
                .into());
            }
        }
    }
}

/// The request: the instructions as system prompt and the log, shortened in the middle
/// until it fits, as the one user message; no tools, no thinking.
fn summary_request(
    model: &ResolvedModel,
    instructions: &str,
    log: &str,
) -> Result<ChatRequest, SummaryError> {
    let facts = &model.facts;
    let mut request = ChatRequest {
        model: model.name.clone(),
        system: instructions.to_owned(),
        max_tokens: SUMMARY_TOKENS.min(facts.max_output_tokens),
        ..ChatRequest::default()
    };
    let budget = Budget::of(facts.context_window, &request);
    let room = budget.conversation().ok_or(SummaryError::TooSmall)?;
    let mut max_bytes = room * BYTES_PER_TOKEN;
    // The estimate counts the JSON form, which escaping can make longer than the text.
    for _ in 0..8 {
        let message = Message {
            speaker: Speaker::User,
            parts: vec![Part::Text {
                text: elide_middle(log, max_bytes),
            }],
        };
        let tokens = message_tokens(&message);
        if tokens <= room {
            request.messages = vec![message];
            return Ok(request);
        }
        max_bytes = max_bytes * room / tokens * 9 / 10;
    }
    Err(SummaryError::TooSmall)
}
