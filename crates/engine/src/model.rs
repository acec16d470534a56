//! The provider-neutral conversation model: what the agent loop sends to a model and the
//! events it gets back. Each provider converts these to and from its own wire format.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The person (or the service on their behalf).
    User,
    /// The model.
    Assistant,
}

/// One message of the conversation. Tool results travel in `User` messages, as parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who said it.
    pub speaker: Speaker,
    /// What was said, in order.
    pub parts: Vec<Part>,
}

/// A piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// The model asks for a tool to run.
    ToolCall(ToolCall),
    /// A thinking block of an assistant turn (Anthropic extended thinking), kept exactly as
    /// received: the Messages API wants it back unmodified, with its signature, before the
    /// turn's tool calls. Never sent to other providers, never shown as the answer.
    Thinking {
        /// The thinking text, byte for byte.
        thinking: String,
        /// The provider's signature over it.
        signature: String,
    },
    /// A thinking block the provider encrypted; sent back as received.
    RedactedThinking {
        /// The opaque payload.
        data: String,
    },
    /// An image the person attached (user messages only).
    Image {
        /// `image/png`, `image/jpeg`, `image/webp` or `image/gif`.
        media_type: String,
        /// The image's bytes, base64-encoded (standard alphabet, padded).
        data: String,
    },
    /// The answer to an earlier [`Part::ToolCall`] with the same `call_id`.
    ToolResult {
        /// Id of the call this answers.
        call_id: String,
        /// Result text (JSON for draftsmith's tools).
        content: String,
        /// Whether the tool failed.
        is_error: bool,
    },
}

/// A complete tool call: providers assemble argument fragments before emitting it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned id, echoed in the result.
    pub id: String,
    /// Tool function name.
    pub name: String,
    /// Arguments exactly as the model sent them (usually JSON text; may be malformed).
    pub arguments: String,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    /// Function name.
    pub name: String,
    /// What it does, written for a model.
    pub description: String,
    /// JSON Schema of its input object.
    pub input_schema: serde_json::Value,
}

/// One call to a model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The provider's model name (without the `provider/` prefix).
    pub model: String,
    /// System instructions.
    pub system: String,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools offered.
    pub tools: Vec<ToolDef>,
    /// Upper bound on generated tokens (thinking included).
    pub max_tokens: u32,
    /// Anthropic: enable extended thinking with this budget; `None` sends no `thinking`.
    #[serde(default)]
    pub thinking_budget: Option<u32>,
    /// OpenAI-compatible: the `reasoning_effort`, sent only when set.
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    /// Place prompt-cache markers (providers that cache by marker).
    #[serde(default)]
    pub cache_markers: bool,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A final answer.
    Stop,
    /// It wants tool results.
    ToolCalls,
    /// It hit the token limit.
    Length,
    /// Anything else the provider reported.
    Other,
}

/// Token counts, when the provider reports them (one type shared with the accounting).
pub use draftsmith_core::Usage;

/// What a model stream yields, in order. A well-formed stream ends with exactly one
/// [`ModelEvent::Finished`]; a stream that ends without it is a
/// [`ModelError::MalformedStream`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ModelEvent {
    /// Answer text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// Reasoning or thinking text; never shown as the answer.
    ReasoningDelta {
        /// The new text.
        text: String,
    },
    /// A complete thinking block with its signature (after its `ReasoningDelta`s), to keep
    /// with the assistant turn.
    Thinking {
        /// The whole thinking text.
        thinking: String,
        /// Its signature.
        signature: String,
    },
    /// An encrypted thinking block, to keep with the assistant turn.
    RedactedThinking {
        /// The opaque payload.
        data: String,
    },
    /// A tool call, complete with its arguments.
    ToolCall(ToolCall),
    /// The end of the turn.
    Finished {
        /// Why it stopped.
        reason: FinishReason,
        /// Token counts.
        usage: Option<Usage>,
    },
}

/// How a model call failed. Each variant says whether trying again may help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The provider answered with an HTTP error status.
    #[error("the model provider answered HTTP {status}: {message}")]
    Http {
        /// HTTP status.
        status: u16,
        /// The provider's message (from its error body when it has one).
        message: String,
        /// `retry-after`, when sent.
        retry_after: Option<Duration>,
    },
    /// The stream could not be parsed or ended early.
    #[error("the model stream was malformed: {0}")]
    MalformedStream(String),
    /// No connection could be made or it broke before an answer.
    #[error("could not reach the model provider: {0}")]
    Connect(String),
    /// No answer in time.
    #[error("the model provider did not answer in time")]
    Timeout,
    /// The caller cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl ModelError {
    /// Whether the same request may succeed if sent again (before any output was used):
    /// rate limits, server errors, connection failures and timeouts.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Http { status, .. } => *status == 429 || *status >= 500,
            Self::Connect(_) | Self::Timeout => true,
            Self::MalformedStream(_) | Self::Cancelled => false,
        }
    }
}

/// A stream of model events.
pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelEvent, ModelError>> + Send>>;

/// A model API. `stream` is the one primitive; dropping the stream or cancelling the token
/// abandons the in-flight request.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Starts a streamed completion; errors before the first event (HTTP status, connect)
    /// are returned here, later ones inside the stream.
    async fn stream(
        &self,
        request: ChatRequest,
        cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError>;
}

/// Which wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI-compatible chat completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl ProviderKind {
    /// Parses the configuration spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            _ => None,
        }
    }

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }
}
