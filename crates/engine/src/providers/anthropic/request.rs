//! [`ChatRequest`] → the Messages API body.
//!
//! - Extended thinking: with a budget, the body carries `thinking` and a `max_tokens` above
//!   the budget, and each assistant turn's thinking and `redacted_thinking` blocks go back
//!   first in that turn, unmodified with their signatures. Without a budget no thinking
//!   block is ever sent.
//! - Prompt caching (`cache_markers`): `cache_control` on the last tool, on the system
//!   prompt, on the newest stable point of the conversation (the last block of the last
//!   message, which the next step resends unchanged) and on the previous step's stable
//!   point (the last user message before the newest assistant turn), so each step reads
//!   the prefix the step before wrote. That is the API's limit of four markers.

use super::types::{
    Block, CacheControl, EPHEMERAL, ImageSource, MessagesRequest, RequestBlock, RequestMessage,
    RequestTool, Role, System, ThinkingConfig,
};
use crate::model::{ChatRequest, Part, Speaker};

/// The wire body for `request`.
pub(super) fn request_body(request: &ChatRequest) -> MessagesRequest<'_> {
    let thinking = request.thinking_budget.filter(|budget| *budget > 0);
    let mut messages = conversation(request, thinking.is_some());
    let marker = request.cache_markers.then_some(EPHEMERAL);
    if marker.is_some() {
        mark_conversation(&mut messages);
    }
    let last_tool = request.tools.len().checked_sub(1);
    let tools = request
        .tools
        .iter()
        .enumerate()
        .map(|(i, tool)| RequestTool {
            name: &tool.name,
            description: &tool.description,
            input_schema: &tool.input_schema,
            cache_control: marker.filter(|_| Some(i) == last_tool),
        })
        .collect();
    let system = match (request.system.is_empty(), marker) {
        (true, _) => None,
        (false, None) => Some(System::Text(&request.system)),
        (false, Some(marker)) => Some(System::Blocks(vec![Block {
            block: RequestBlock::Text {
                text: &request.system,
            },
            cache_control: Some(marker),
        }])),
    };
    let max_tokens = match thinking {
        // The answer needs room beyond the thinking budget.
        Some(budget) if request.max_tokens <= budget => budget.saturating_add(1_024),
        _ => request.max_tokens,
    };
    MessagesRequest {
        model: &request.model,
        system,
        messages,
        tools,
        max_tokens,
        thinking: thinking.map(|budget_tokens| ThinkingConfig {
            kind: "enabled",
            budget_tokens,
        }),
        stream: true,
    }
}

/// The messages, empty ones dropped and consecutive ones of a role merged (the roles must
/// alternate); tool results lead their user message and thinking its assistant turn.
fn conversation(request: &ChatRequest, thinking: bool) -> Vec<RequestMessage<'_>> {
    let mut messages: Vec<RequestMessage<'_>> = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        let role = match message.speaker {
            Speaker::User => Role::User,
            Speaker::Assistant => Role::Assistant,
        };
        let mut blocks: Vec<Block<'_>> = message
            .parts
            .iter()
            .filter_map(|part| convert_part(part, role, thinking))
            .map(|block| Block {
                block,
                cache_control: None,
            })
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
        // A stable sort keeps the rest in order.
        message.content.sort_by_key(|b| match b.block {
            RequestBlock::ToolResult { .. }
            | RequestBlock::Thinking { .. }
            | RequestBlock::RedactedThinking { .. } => 0,
            _ => 1,
        });
    }
    messages
}

/// Marks the newest stable point and the previous step's one.
fn mark_conversation(messages: &mut [RequestMessage<'_>]) {
    let Some(newest) = messages.len().checked_sub(1) else {
        return;
    };
    set_marker(&mut messages[newest], EPHEMERAL);
    let last_assistant = messages.iter().rposition(|m| m.role == Role::Assistant);
    let previous =
        last_assistant.and_then(|a| messages[..a].iter().rposition(|m| m.role == Role::User));
    if let Some(previous) = previous.filter(|p| *p != newest) {
        set_marker(&mut messages[previous], EPHEMERAL);
    }
}

/// Puts `marker` on the message's last block that may carry one (thinking blocks may not).
fn set_marker(message: &mut RequestMessage<'_>, marker: CacheControl) {
    if let Some(block) = message.content.iter_mut().rev().find(|b| {
        !matches!(
            b.block,
            RequestBlock::Thinking { .. } | RequestBlock::RedactedThinking { .. }
        )
    }) {
        block.cache_control = Some(marker);
    }
}

/// One part as a content block; `None` for parts the API would reject.
fn convert_part(part: &Part, role: Role, thinking: bool) -> Option<RequestBlock<'_>> {
    match part {
        Part::Text { text } if text.is_empty() => None,
        Part::Text { text } => Some(RequestBlock::Text { text }),
        // Thinking goes back only in assistant turns, and only while thinking is on.
        Part::Thinking { .. } | Part::RedactedThinking { .. }
            if role == Role::User || !thinking =>
        {
            None
        }
        Part::Thinking {
            thinking,
            signature,
        } => Some(RequestBlock::Thinking {
            thinking,
            signature,
        }),
        Part::RedactedThinking { data } => Some(RequestBlock::RedactedThinking { data }),
        // Only the assistant calls tools.
        Part::ToolCall(_) if role == Role::User => None,
        Part::ToolCall(call) => Some(RequestBlock::ToolUse {
            id: &call.id,
            name: &call.name,
            input: tool_input(&call.arguments),
        }),
        Part::Image { .. } if role == Role::Assistant => None,
        Part::Image { media_type, data } => Some(RequestBlock::Image {
            source: ImageSource {
                kind: "base64",
                media_type,
                data,
            },
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
