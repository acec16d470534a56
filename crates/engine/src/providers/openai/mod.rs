//! The OpenAI Chat Completions API, streamed: `POST {base_url}/chat/completions`.
//!
//! Works with OpenAI and the many servers that copy its API (vLLM, llama.cpp, Ollama,
//! OpenRouter, DeepSeek, …): reasoning arrives as `delta.reasoning_content` or
//! `delta.reasoning` and is reported as [`ModelEvent::ReasoningDelta`], never as text.
//!
//! Conversion notes:
//! - The system prompt is the first message (omitted when empty).
//! - A message's text parts are joined with `"\n"`.
//! - Each [`Part::ToolResult`] becomes its own `role: "tool"` message, placed before the
//!   user text of the same message, since the API wants tool messages right after the
//!   assistant message that called them. The API has no error flag for tool results, so
//!   `is_error` is not sent (draftsmith's tool results say so in their content).
//! - Reasoning is never sent back: thinking parts of earlier turns are dropped.
//! - `reasoning_effort` is sent only when set, and then the output limit goes as
//!   `max_completion_tokens`, which reasoning models require instead of `max_tokens`.
//! - Nothing per request precedes the conversation, so servers that cache a repeated
//!   prefix by themselves can reuse every earlier step.
//!
//! [`ModelEvent::ReasoningDelta`]: crate::model::ModelEvent::ReasoningDelta

mod streaming;
mod types;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use self::streaming::ChatCompletionDecoder;
use self::types::{
    ChatCompletionRequest, FunctionType, RequestFunction, RequestFunctionCall, RequestMessage,
    RequestTool, RequestToolCall, StreamOptions,
};
use crate::model::{ChatRequest, Message, ModelError, ModelStream, Part, Provider, Speaker};
use crate::providers::DEFAULT_IDLE_TIMEOUT;
use crate::providers::http;

/// A model behind the OpenAI Chat Completions API.
#[derive(Clone)]
pub struct OpenAiProvider {
    base_url: String,
    api_key: Option<String>,
    http: reqwest::Client,
    idle_timeout: Duration,
}

impl OpenAiProvider {
    /// A provider for `base_url` (which already ends in `/v1`, e.g.
    /// `https://api.openai.com/v1`), sending `api_key` as a bearer token when set.
    pub fn new(
        base_url: impl Into<String>,
        api_key: Option<String>,
        http: reqwest::Client,
    ) -> Self {
        let mut base_url = base_url.into();
        while base_url.ends_with('/') {
            base_url.pop();
        }
        Self {
            base_url,
            api_key,
            http,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// Sets how long to wait for the response headers and then for each next chunk
    /// (default [`DEFAULT_IDLE_TIMEOUT`]) before failing with [`ModelError::Timeout`].
    #[must_use]
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url)
    }
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    async fn stream(
        &self,
        request: ChatRequest,
        cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        let body = request_body(&request);
        let mut builder = self.http.post(self.endpoint()).json(&body);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        let response = http::send(builder, self.idle_timeout, &cancel).await?;
        Ok(http::sse_stream(
            response,
            ChatCompletionDecoder::default(),
            self.idle_timeout,
            cancel,
        ))
    }
}

/// The wire body for `request`.
fn request_body(request: &ChatRequest) -> ChatCompletionRequest<'_> {
    let effort = request
        .reasoning_effort
        .as_deref()
        .filter(|e| !e.is_empty());
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(RequestMessage::System {
            content: &request.system,
        });
    }
    for message in &request.messages {
        convert_message(message, &mut messages);
    }
    let tools = request
        .tools
        .iter()
        .map(|tool| RequestTool {
            kind: FunctionType::Function,
            function: RequestFunction {
                name: &tool.name,
                description: &tool.description,
                parameters: &tool.input_schema,
            },
        })
        .collect();
    ChatCompletionRequest {
        model: &request.model,
        messages,
        tools,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        max_tokens: effort.is_none().then_some(request.max_tokens),
        max_completion_tokens: effort.is_some().then_some(request.max_tokens),
        reasoning_effort: effort,
    }
}

fn convert_message<'a>(message: &'a Message, out: &mut Vec<RequestMessage<'a>>) {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    let mut results = Vec::new();
    for part in &message.parts {
        match part {
            Part::Text { text } => texts.push(text.as_str()),
            Part::ToolCall(call) => calls.push(RequestToolCall {
                id: &call.id,
                kind: FunctionType::Function,
                function: RequestFunctionCall {
                    name: &call.name,
                    arguments: &call.arguments,
                },
            }),
            Part::ToolResult {
                call_id, content, ..
            } => results.push(RequestMessage::Tool {
                tool_call_id: call_id,
                content,
            }),
            // Reasoning stays with draftsmith; many servers refuse it in a request.
            Part::Thinking { .. } | Part::RedactedThinking { .. } => {}
        }
    }
    let text = (!texts.is_empty()).then(|| texts.join("\n"));
    match message.speaker {
        Speaker::User => {
            // Tool calls have no place in a user message; they are dropped.
            out.extend(results);
            if let Some(content) = text {
                out.push(RequestMessage::User { content });
            }
        }
        Speaker::Assistant => {
            if text.is_some() || !calls.is_empty() {
                out.push(RequestMessage::Assistant {
                    content: text,
                    tool_calls: calls,
                });
            }
            out.extend(results);
        }
    }
}
