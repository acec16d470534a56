//! HTTP plumbing shared by the providers: sending a request with a timeout and a
//! cancellation token, turning error answers into [`ModelError::Http`], and driving an SSE
//! body through a per-API [`SseDecoder`] into a [`ModelStream`].

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::model::{ModelError, ModelEvent, ModelStream};

/// The longest provider message kept in [`ModelError::Http`], in characters.
const MAX_ERROR_MESSAGE_CHARS: usize = 2000;
/// How much of an error body is read at most.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Sends `request` and waits for the response headers, at most `timeout`, giving up when
/// `cancel` fires. A non-2xx answer becomes [`ModelError::Http`].
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<reqwest::Response, ModelError> {
    let response = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(ModelError::Cancelled),
        sent = tokio::time::timeout(timeout, request.send()) => match sent {
            Err(_elapsed) => return Err(ModelError::Timeout),
            Ok(Err(error)) => return Err(transport_error(&error)),
            Ok(Ok(response)) => response,
        },
    };
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(http_error(response, timeout, cancel).await)
    }
}

/// Maps a reqwest failure (sending, or reading the body) to a [`ModelError`].
pub(crate) fn transport_error(error: &reqwest::Error) -> ModelError {
    if error.is_timeout() {
        ModelError::Timeout
    } else {
        ModelError::Connect(error_chain(error))
    }
}

/// An error's message followed by those of its sources, which is where reqwest keeps the
/// useful part ("Connection refused").
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Builds [`ModelError::Http`] from an error answer: its status, the `retry-after` header
/// and the body's `error.message` (else the body text, bounded).
async fn http_error(
    mut response: reqwest::Response,
    timeout: Duration,
    cancel: &CancellationToken,
) -> ModelError {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let mut body = Vec::new();
    // The status is what matters; a body that is slow, broken or cancelled only loses
    // the message detail.
    loop {
        let chunk = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            chunk = tokio::time::timeout(timeout, response.chunk()) => chunk,
        };
        match chunk {
            Ok(Ok(Some(bytes))) => {
                body.extend_from_slice(&bytes);
                if body.len() >= MAX_ERROR_BODY_BYTES {
                    body.truncate(MAX_ERROR_BODY_BYTES);
                    break;
                }
            }
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&body);
    let message = error_message(&text).unwrap_or_else(|| {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            response
                .status()
                .canonical_reason()
                .unwrap_or("no message")
                .to_owned()
        } else {
            trimmed.to_owned()
        }
    });
    ModelError::Http {
        status,
        message: bounded(message),
        retry_after,
    }
}

/// The shapes of error bodies seen in the wild: `{"error": {"message": ...}}` (OpenAI,
/// Anthropic), `{"error": "..."}` and `{"message": "..."}` (some compatible servers).
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorBody {
    Nested { error: NestedError },
    Flat { error: String },
    Message { message: String },
}

#[derive(Deserialize)]
struct NestedError {
    message: String,
}

/// The message inside an error body, when it has one of the known shapes.
pub(crate) fn error_message(body: &str) -> Option<String> {
    match serde_json::from_str::<ErrorBody>(body).ok()? {
        ErrorBody::Nested { error } => Some(error.message),
        ErrorBody::Flat { error } => Some(error),
        ErrorBody::Message { message } => Some(message),
    }
}

/// Cuts `message` to [`MAX_ERROR_MESSAGE_CHARS`] characters.
pub(crate) fn bounded(mut message: String) -> String {
    if let Some((cut, _)) = message.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// The `retry-after` header as a delay, when it is a number of seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let seconds = value.parse::<f64>().ok()?;
    if seconds.is_finite() && seconds >= 0.0 {
        Some(Duration::from_secs_f64(seconds))
    } else {
        None
    }
}

/// An error the provider reported inside a stream it had answered with 200: its
/// `message`, else its `kind`, under `status`.
pub(crate) fn mid_stream_error(
    status: u16,
    message: Option<String>,
    kind: Option<String>,
) -> ModelError {
    let message = message
        .or(kind)
        .unwrap_or_else(|| "the provider reported an error mid-stream".to_owned());
    ModelError::Http {
        status,
        message: bounded(message),
        retry_after: None,
    }
}

/// Queues the turn's one [`ModelEvent::Finished`]: the reason the provider gave, else
/// tool calls when the turn made any, else a plain stop.
pub(crate) fn finished(
    out: &mut VecDeque<ModelEvent>,
    reason: Option<crate::model::FinishReason>,
    called: bool,
    usage: Option<draftsmith_core::Usage>,
) {
    use crate::model::FinishReason;
    let reason = reason.unwrap_or(if called {
        FinishReason::ToolCalls
    } else {
        FinishReason::Stop
    });
    out.push_back(ModelEvent::Finished { reason, usage });
}

/// Whether an SSE decoder has seen the end of the turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// More events are expected.
    Continue,
    /// The turn is complete ([`ModelEvent::Finished`] has been queued); the rest of the body
    /// is ignored.
    Done,
}

/// Turns one API's server-sent events into [`ModelEvent`]s.
pub(crate) trait SseDecoder: Send + 'static {
    /// Handles one event's data (trimmed, never empty: events without data are skipped
    /// before), queueing what it yields on `out`.
    fn on_data(
        &mut self,
        data: &str,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<Progress, ModelError>;

    /// The body ended before [`Progress::Done`]: queue what is still owed (including
    /// [`ModelEvent::Finished`]) if the stream is acceptable as it is, else fail.
    fn on_eof(&mut self, out: &mut VecDeque<ModelEvent>) -> Result<(), ModelError>;
}

type SseEvents =
    Pin<Box<dyn Stream<Item = Result<Event, EventStreamError<reqwest::Error>>> + Send>>;

/// Reads `response` as server-sent events through `decoder`.
///
/// The stream yields the decoder's events in order. It ends after the decoder reports
/// [`Progress::Done`], or after the first error: a decoder error, a transport error
/// ([`ModelError::Connect`]), no chunk within `idle_timeout` ([`ModelError::Timeout`]) or
/// `cancel` firing ([`ModelError::Cancelled`]). The body is dropped as soon as the stream
/// is over, which closes the connection.
pub(crate) fn sse_stream<D: SseDecoder>(
    response: reqwest::Response,
    decoder: D,
    idle_timeout: Duration,
    cancel: CancellationToken,
) -> ModelStream {
    let state = SseState {
        events: Some(Box::pin(response.bytes_stream().eventsource())),
        decoder,
        queue: VecDeque::new(),
        error: None,
        idle_timeout,
        cancel,
    };
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        let item = state.next_item().await?;
        Some((item, state))
    }))
}

struct SseState<D> {
    /// The body; `None` once the stream is over.
    events: Option<SseEvents>,
    decoder: D,
    /// Decoded events not yet handed out.
    queue: VecDeque<ModelEvent>,
    /// The error to hand out once the queue is empty.
    error: Option<ModelError>,
    idle_timeout: Duration,
    cancel: CancellationToken,
}

impl<D: SseDecoder> SseState<D> {
    async fn next_item(&mut self) -> Option<Result<ModelEvent, ModelError>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(Ok(event));
            }
            if let Some(error) = self.error.take() {
                return Some(Err(error));
            }
            let events = self.events.as_mut()?;
            let next = tokio::select! {
                biased;
                () = self.cancel.cancelled() => Err(ModelError::Cancelled),
                next = tokio::time::timeout(self.idle_timeout, events.next()) => {
                    next.map_err(|_elapsed| ModelError::Timeout)
                }
            };
            let outcome = match next {
                Err(error) => Err(error),
                Ok(None) => self
                    .decoder
                    .on_eof(&mut self.queue)
                    .map(|()| Progress::Done),
                Ok(Some(Err(error))) => Err(sse_error(error)),
                Ok(Some(Ok(event))) => match event.data.trim() {
                    "" => Ok(Progress::Continue),
                    data => self.decoder.on_data(data, &mut self.queue),
                },
            };
            match outcome {
                Ok(Progress::Continue) => {}
                Ok(Progress::Done) => self.events = None,
                Err(error) => {
                    self.events = None;
                    self.error = Some(error);
                }
            }
        }
    }
}

fn sse_error(error: EventStreamError<reqwest::Error>) -> ModelError {
    match error {
        EventStreamError::Transport(error) => transport_error(&error),
        EventStreamError::Utf8(error) => {
            ModelError::MalformedStream(format!("the event stream is not UTF-8: {error}"))
        }
        EventStreamError::Parser(error) => {
            ModelError::MalformedStream(format!("the event stream could not be parsed: {error}"))
        }
    }
}

/// Parses an event's JSON `data` into `T`, naming the failure.
pub(crate) fn parse_data<T: serde::de::DeserializeOwned>(data: &str) -> Result<T, ModelError> {
    serde_json::from_str(data).map_err(|error| {
        let mut shown: String = data.chars().take(200).collect();
        if shown.len() < data.len() {
            shown.push('…');
        }
        ModelError::MalformedStream(format!("invalid JSON in event data ({error}): {shown}"))
    })
}
