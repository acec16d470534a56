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
//! - Thinking: see [`request`] for extended thinking and the prompt-cache markers.

mod request;
mod streaming;
mod types;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use self::request::request_body;
use self::streaming::MessagesDecoder;
use self::types::API_VERSION;
use crate::model::{ChatRequest, ModelError, ModelStream, Provider};
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
