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

use self::request::request_body;
use self::streaming::MessagesDecoder;
use self::types::API_VERSION;

crate::providers::endpoint::provider! {
    /// A model behind the Anthropic Messages API.
    AnthropicProvider, "/messages", MessagesDecoder, authorize
}

/// The API's version always, and the key as `x-api-key`.
fn authorize(builder: reqwest::RequestBuilder, key: Option<&str>) -> reqwest::RequestBuilder {
    let builder = builder.header("anthropic-version", API_VERSION);
    match key {
        Some(key) => builder.header("x-api-key", key),
        None => builder,
    }
}
