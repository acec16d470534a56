//! The Anthropic Messages API, streamed: `POST {base_url}/messages`.
//!
//! Conversion notes:
//! - The system prompt goes in `system` (omitted when empty).
//! - Empty text parts are dropped (the API rejects empty text blocks), and so are messages
//!   left with no blocks.
//! - A tool call's `input` is its arguments parsed as JSON; arguments that are not a JSON
//!   object are sent as `{}`.
//! - Tool results become `tool_result` blocks of a user message, placed before that
//!   message's text blocks, as the API requires.
//! - Consecutive messages of the same role are merged, since the API wants the roles to
//!   alternate.

mod streaming;
mod types;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use self::streaming::MessagesDecoder;
use self::types::{API_VERSION, MessagesRequest, RequestBlock, RequestMessage, RequestTool, Role};
use crate::model::{ChatRequest, ModelError, ModelStream, Part, Provider, Speaker};
use crate::providers::DEFAULT_IDLE_TIMEOUT;
use crate::providers::http;

/// A model behind the Anthropic Messages API.
#[derive(Clone)]
pub struct AnthropicProvider {
    base_url: String,
    api_key: Option<String>,
    http: reqwest::Client,
    idle_timeout: Duration,
}

impl AnthropicProvider {
    /// A provider for `base_url` (which already ends in `/v1`, e.g.
    /// `https://api.anthropic.com/v1`), sending `api_key` as `x-api-key` when set.
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

    /// Sets how long to wait for the response headers and then for each next event
    /// (default [`DEFAULT_IDLE_TIMEOUT`]) before failing with [`ModelError::Timeout`].
    #[must_use]
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> String {
        format!("{}/messages", self.base_url)
    }
}

impl fmt::Debug for AnthropicProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    async fn stream(
        &self,
        request: ChatRequest,
        cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        let body = request_body(&request);
        let mut builder = self
            .http
            .post(self.endpoint())
            .header("anthropic-version", API_VERSION)
            .json(&body);
        if let Some(key) = &self.api_key {
            builder = builder.header("x-api-key", key);
        }
        let response = http::send(builder, self.idle_timeout, &cancel).await?;
        Ok(http::sse_stream(
            response,
            MessagesDecoder::default(),
            self.idle_timeout,
            cancel,
        ))
    }
}

/// The wire body for `request`.
fn request_body(request: &ChatRequest) -> MessagesRequest<'_> {
    let mut messages: Vec<RequestMessage<'_>> = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        let role = match message.speaker {
            Speaker::User => Role::User,
            Speaker::Assistant => Role::Assistant,
        };
        let mut blocks: Vec<RequestBlock<'_>> = message
            .parts
            .iter()
            .filter_map(|part| convert_part(part, role))
            .collect();
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.append(&mut blocks),
            _ => messages.push(RequestMessage {
                role,
                content: blocks,
            }),
        }
    }
    for message in &mut messages {
        // Tool results lead their user message (a stable sort keeps the rest in order).
        message
            .content
            .sort_by_key(|block| !matches!(block, RequestBlock::ToolResult { .. }));
    }
    let tools = request
        .tools
        .iter()
        .map(|tool| RequestTool {
            name: &tool.name,
            description: &tool.description,
            input_schema: &tool.input_schema,
        })
        .collect();
    MessagesRequest {
        model: &request.model,
        system: &request.system,
        messages,
        tools,
        max_tokens: request.max_tokens,
        stream: true,
    }
}

/// One part as a content block; `None` for parts the API would reject.
fn convert_part(part: &Part, role: Role) -> Option<RequestBlock<'_>> {
    match part {
        Part::Text { text } if text.is_empty() => None,
        Part::Text { text } => Some(RequestBlock::Text { text }),
        // Only the assistant calls tools.
        Part::ToolCall(_) if role == Role::User => None,
        Part::ToolCall(call) => Some(RequestBlock::ToolUse {
            id: &call.id,
            name: &call.name,
            input: tool_input(&call.arguments),
        }),
        // And only the user answers them.
        Part::ToolResult { .. } if role == Role::Assistant => None,
        Part::ToolResult {
            call_id,
            content,
            is_error,
        } => Some(RequestBlock::ToolResult {
            tool_use_id: call_id,
            content,
            is_error: *is_error,
        }),
    }
}

/// A call's arguments as the JSON object the API wants; `{}` when they are not one.
fn tool_input(arguments: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        _ => serde_json::Value::Object(serde_json::Map::new()),
    }
}
