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

use self::streaming::ChatCompletionDecoder;
use self::types::{
    ChatCompletionRequest, ContentPart, FunctionType, ImageUrl, RequestFunction,
    RequestFunctionCall, RequestMessage, RequestTool, RequestToolCall, StreamOptions, UserContent,
};
use crate::model::{ChatRequest, Message, Part, Speaker};

crate::providers::endpoint::provider! {
    /// A model behind the OpenAI Chat Completions API.
    OpenAiProvider, "/chat/completions", ChatCompletionDecoder, authorize
}

/// The key goes as a bearer token.
fn authorize(builder: reqwest::RequestBuilder, key: Option<&str>) -> reqwest::RequestBuilder {
    match key {
        Some(key) => builder.bearer_auth(key),
        None => builder,
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
    let mut images = Vec::new();
    for part in &message.parts {
        match part {
            Part::Image { media_type, data } => images.push(ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: format!("data:{media_type};base64,{data}"),
                },
            }),
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
            if images.is_empty() {
                if let Some(content) = text {
                    let content = UserContent::Text(content);
                    out.push(RequestMessage::User { content });
                }
            } else {
                let text = text.map(|text| ContentPart::Text { text });
                let parts = text.into_iter().chain(images).collect();
                let content = UserContent::Parts(parts);
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
