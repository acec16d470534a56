//! What the server needs to know about an incoming request, for both dialects.

use std::collections::HashSet;

use serde_json::Value;

/// Which provider protocol a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `POST /v1/chat/completions`.
    OpenAi,
    /// `POST /v1/messages`.
    Anthropic,
}

/// The facts read from a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inbound {
    /// `stream: true`.
    pub stream: bool,
    /// OpenAI `stream_options.include_usage: true`.
    pub include_usage: bool,
    /// The requested model, echoed back.
    pub model: String,
    /// System prompt plus all user text, for scenario matching.
    pub match_text: String,
    /// Number of assistant messages already in the conversation.
    pub turn: usize,
    /// Tool results that answer no earlier tool call.
    pub violations: Vec<String>,
}

impl Inbound {
    /// Reads a request body; missing or odd fields are tolerated, never fatal.
    pub fn read(dialect: Dialect, body: &Value) -> Inbound {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut texts = Vec::new();
        if dialect == Dialect::Anthropic
            && let Some(system) = body.get("system")
        {
            collect_text(system, &mut texts);
        }
        let mut turn = 0;
        for message in messages {
            match message.get("role").and_then(Value::as_str) {
                Some("assistant") => turn += 1,
                Some("user") => {
                    if let Some(content) = message.get("content") {
                        collect_text(content, &mut texts);
                    }
                }
                Some("system" | "developer") if dialect == Dialect::OpenAi => {
                    if let Some(content) = message.get("content") {
                        collect_text(content, &mut texts);
                    }
                }
                _ => {}
            }
        }
        Inbound {
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            include_usage: body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            model: body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("coder")
                .to_owned(),
            match_text: texts.join("\n"),
            turn,
            violations: match dialect {
                Dialect::OpenAi => openai_violations(messages),
                Dialect::Anthropic => {
                    let mut all = anthropic_violations(messages);
                    all.extend(crate::rules::check(body));
                    all
                }
            },
        }
    }
}

/// Text of a content value: a string, or the `text` of its `type: "text"` parts.
fn collect_text(content: &Value, out: &mut Vec<String>) {
    match content {
        Value::String(s) => out.push(s.clone()),
        Value::Array(parts) => {
            for part in parts {
                if part.get("type").and_then(Value::as_str) == Some("text")
                    && let Some(text) = part.get("text").and_then(Value::as_str)
                {
                    out.push(text.to_owned());
                }
            }
        }
        _ => {}
    }
}

/// Every `role: "tool"` message must name a `tool_call_id` from an earlier assistant message.
fn openai_violations(messages: &[Value]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut violations = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        match message.get("role").and_then(Value::as_str) {
            Some("assistant") => {
                for call in message
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(id) = call.get("id").and_then(Value::as_str) {
                        seen.insert(id.to_owned());
                    }
                }
            }
            Some("tool") => match message.get("tool_call_id").and_then(Value::as_str) {
                None => violations.push(format!(
                    "messages[{i}]: tool message without a tool_call_id"
                )),
                Some(id) if !seen.contains(id) => violations.push(format!(
                    "messages[{i}]: tool result for tool_call_id \"{id}\" answers no earlier tool call"
                )),
                Some(_) => {}
            },
            _ => {}
        }
    }
    violations
}

/// Every `tool_result` block must name a `tool_use_id` from an earlier `tool_use` block.
fn anthropic_violations(messages: &[Value]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut violations = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str);
        let blocks = message
            .get("content")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (j, block) in blocks.iter().enumerate() {
            match block.get("type").and_then(Value::as_str) {
                Some("tool_use") if role == Some("assistant") => {
                    if let Some(id) = block.get("id").and_then(Value::as_str) {
                        seen.insert(id.to_owned());
                    }
                }
                Some("tool_result") => match block.get("tool_use_id").and_then(Value::as_str) {
                    None => violations.push(format!(
                        "messages[{i}].content[{j}]: tool_result without a tool_use_id"
                    )),
                    Some(id) if !seen.contains(id) => violations.push(format!(
                        "messages[{i}].content[{j}]: tool_result for tool_use_id \"{id}\" answers no earlier tool_use"
                    )),
                    Some(_) => {}
                },
                _ => {}
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_turn_match_text_and_violations() {
        let body = json!({
            "model": "m", "stream": true, "stream_options": {"include_usage": true},
            "messages": [
                {"role": "system", "content": "SYS"},
                {"role": "user", "content": [{"type": "text", "text": "U1"}]},
                {"role": "tool", "tool_call_id": "early", "content": "x"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "ok"},
                {"role": "tool", "content": "no id"},
                {"role": "user", "content": "U2"}
            ]
        });
        let inbound = Inbound::read(Dialect::OpenAi, &body);
        assert!(inbound.stream && inbound.include_usage);
        assert_eq!(inbound.model, "m");
        assert_eq!(inbound.turn, 1);
        assert_eq!(inbound.match_text, "SYS\nU1\nU2");
        assert_eq!(inbound.violations.len(), 2, "{:?}", inbound.violations);
        assert!(inbound.violations[0].contains("\"early\""));
        assert!(inbound.violations[1].contains("messages[5]"));
    }

    #[test]
    fn anthropic_turn_match_text_and_violations() {
        let body = json!({
            "model": "claude",
            "system": [{"type": "text", "text": "SYS"}],
            "messages": [
                {"role": "user", "content": "U1"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "a", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "TOOL OUTPUT"},
                    {"type": "tool_result", "tool_use_id": "t9", "content": "x"},
                    {"type": "text", "text": "U2"}
                ]}
            ]
        });
        let inbound = Inbound::read(Dialect::Anthropic, &body);
        assert!(!inbound.stream);
        assert_eq!(inbound.turn, 1);
        assert_eq!(inbound.match_text, "SYS\nU1\nU2");
        assert_eq!(inbound.violations.len(), 1);
        assert!(inbound.violations[0].contains("\"t9\""));
    }

    #[test]
    fn tolerates_empty_body() {
        let inbound = Inbound::read(Dialect::OpenAi, &json!({}));
        assert_eq!(inbound.turn, 0);
        assert_eq!(inbound.model, "coder");
        assert!(inbound.violations.is_empty());
    }
}
