//! The Messages API's rules for a request, held the way the real API holds them (and a
//! little stricter where a test needs to see a mistake), plus the signatures the server
//! puts on its thinking blocks so it can tell a block sent back unmodified from one that
//! was not.
//!
//! Checked on every `POST /v1/messages`:
//! - `thinking`, when present, is `{"type": "enabled", "budget_tokens": N}` with
//!   `N >= 1024` and `max_tokens > N`;
//! - text blocks are not empty;
//! - at most four `cache_control` markers over `tools`, `system` and `messages`, each
//!   `{"type": "ephemeral"}`, and none on a thinking block;
//! - thinking and `redacted_thinking` blocks appear only in assistant turns, first in
//!   their turn, exactly as this server sent them (text and signature byte for byte); with
//!   thinking disabled the API ignores them, and so does this check's order rule;
//! - with thinking enabled, an assistant turn whose tool use the last message answers
//!   starts with a thinking block.

use serde_json::Value;

/// The smallest thinking budget the API accepts.
const MIN_BUDGET: u64 = 1_024;
/// The API's limit on `cache_control` markers in one request.
const MAX_MARKERS: usize = 4;

/// FNV-1a, 64 bits: stable across processes and releases.
pub(crate) fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The signature this server gives a thinking block with this text.
pub(crate) fn signature(thinking: &str) -> String {
    format!("mock-sig-{:016x}", fnv(thinking))
}

/// The `data` of a `redacted_thinking` block wrapping `payload`.
pub(crate) fn redacted_data(payload: &str) -> String {
    format!("mock-redacted-{:016x}-{payload}", fnv(payload))
}

fn redacted_ok(data: &str) -> bool {
    data.strip_prefix("mock-redacted-")
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(hash, payload)| hash == format!("{:016x}", fnv(payload)))
}

fn kind(block: &Value) -> Option<&str> {
    block.get("type").and_then(Value::as_str)
}

fn is_thinking(block: &Value) -> bool {
    matches!(kind(block), Some("thinking" | "redacted_thinking"))
}

/// Every rule the request breaks, each naming where.
pub(crate) fn check(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let thinking = check_thinking_config(body, &mut out);
    check_markers(body, &mut out);
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str);
        let Some(blocks) = message.get("content").and_then(Value::as_array) else {
            continue;
        };
        let mut others_seen = false;
        for (j, block) in blocks.iter().enumerate() {
            let at = format!("messages[{i}].content[{j}]");
            if kind(block) == Some("text")
                && block
                    .get("text")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                out.push(format!("{at}: text content blocks must be non-empty"));
            }
            if !is_thinking(block) {
                others_seen = true;
                continue;
            }
            if role != Some("assistant") {
                out.push(format!("{at}: thinking blocks belong to assistant turns"));
            } else if thinking && others_seen {
                out.push(format!(
                    "{at}: thinking blocks must come first in their turn"
                ));
            }
            check_unmodified(block, &at, &mut out);
        }
    }
    if thinking {
        check_tool_turn_starts_with_thinking(messages, &mut out);
    }
    out
}

/// Whether thinking is enabled; records a malformed `thinking` object.
fn check_thinking_config(body: &Value, out: &mut Vec<String>) -> bool {
    let Some(config) = body.get("thinking") else {
        return false;
    };
    match config.get("type").and_then(Value::as_str) {
        Some("disabled") => return false,
        Some("enabled") => {}
        other => {
            out.push(format!(
                "thinking.type: expected enabled or disabled, got {other:?}"
            ));
            return false;
        }
    }
    let budget = config.get("budget_tokens").and_then(Value::as_u64);
    let max_tokens = body.get("max_tokens").and_then(Value::as_u64).unwrap_or(0);
    match budget {
        None => out.push("thinking.budget_tokens: required".into()),
        Some(b) if b < MIN_BUDGET => out.push(format!(
            "thinking.budget_tokens: {b} is below the minimum of {MIN_BUDGET}"
        )),
        Some(b) if max_tokens <= b => out.push(format!(
            "max_tokens: {max_tokens} must be greater than thinking.budget_tokens {b}"
        )),
        Some(_) => {}
    }
    true
}

/// A thinking block must be one this server sent, unchanged.
fn check_unmodified(block: &Value, at: &str, out: &mut Vec<String>) {
    let text = |key: &str| block.get(key).and_then(Value::as_str);
    let ok = match kind(block) {
        Some("thinking") => match (text("thinking"), text("signature")) {
            (Some(thinking), Some(sig)) => sig == signature(thinking),
            _ => false,
        },
        _ => text("data").is_some_and(redacted_ok),
    };
    if !ok {
        out.push(format!(
            "{at}: the thinking block or its signature was modified or is missing"
        ));
    }
}

/// The assistant turn the last message answers with tool results must start with thinking.
fn check_tool_turn_starts_with_thinking(messages: &[Value], out: &mut Vec<String>) {
    let Some(last) = messages.last() else {
        return;
    };
    let answers_tools = last
        .get("content")
        .and_then(Value::as_array)
        .is_some_and(|blocks| blocks.iter().any(|b| kind(b) == Some("tool_result")));
    if !answers_tools || messages.len() < 2 {
        return;
    }
    let i = messages.len() - 2;
    let first = messages[i]
        .get("content")
        .and_then(Value::as_array)
        .and_then(|blocks| blocks.first());
    if !first.is_some_and(is_thinking) {
        out.push(format!(
            "messages[{i}]: with thinking enabled, an assistant turn with tool use must start with its thinking block"
        ));
    }
}

/// At most four markers, all ephemeral, none on thinking.
fn check_markers(body: &Value, out: &mut Vec<String>) {
    let mut markers: Vec<(String, &Value)> = Vec::new();
    let list = |key: &str| {
        body.get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    for (i, tool) in list("tools").iter().enumerate() {
        markers.push((format!("tools[{i}]"), tool));
    }
    for (i, block) in list("system").iter().enumerate() {
        markers.push((format!("system[{i}]"), block));
    }
    for (i, message) in list("messages").iter().enumerate() {
        for (j, block) in message
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            markers.push((format!("messages[{i}].content[{j}]"), block));
        }
    }
    let marked: Vec<&(String, &Value)> = markers
        .iter()
        .filter(|(_, v)| v.get("cache_control").is_some())
        .collect();
    if marked.len() > MAX_MARKERS {
        out.push(format!(
            "a request may carry at most {MAX_MARKERS} cache_control markers, found {}",
            marked.len()
        ));
    }
    for (at, block) in marked {
        if block.pointer("/cache_control/type").and_then(Value::as_str) != Some("ephemeral") {
            out.push(format!("{at}.cache_control: type must be ephemeral"));
        }
        if is_thinking(block) {
            out.push(format!("{at}: thinking blocks cannot carry cache_control"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn thinking_block(text: &str) -> Value {
        json!({"type": "thinking", "thinking": text, "signature": signature(text)})
    }

    #[test]
    fn accepts_a_well_formed_thinking_tool_loop() {
        let body = json!({
            "max_tokens": 5000,
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "tools": [{"name": "a", "cache_control": {"type": "ephemeral"}}],
            "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [
                    thinking_block("hmm"),
                    {"type": "redacted_thinking", "data": redacted_data("x")},
                    {"type": "tool_use", "id": "t", "name": "a", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok",
                    "cache_control": {"type": "ephemeral"}}]}
            ]
        });
        assert_eq!(check(&body), Vec::<String>::new());
    }

    #[test]
    fn names_each_broken_rule() {
        let mut modified = thinking_block("hmm");
        modified["thinking"] = json!("hmm ");
        let marker = json!({"type": "ephemeral"});
        let body = json!({
            "max_tokens": 1500,
            "thinking": {"type": "enabled", "budget_tokens": 2000},
            "tools": [{"name": "a", "cache_control": marker}, {"name": "b", "cache_control": marker}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "", "cache_control": marker}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t", "name": "a", "input": {}},
                    modified]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok",
                    "cache_control": marker}, {"type": "text", "text": "x", "cache_control": marker}]}
            ]
        });
        let all = check(&body).join("\n");
        for needle in [
            "max_tokens: 1500",
            "non-empty",
            "at most 4 cache_control markers, found 5",
            "must come first",
            "modified",
            "must start with its thinking block",
        ] {
            assert!(all.contains(needle), "{needle} not in {all}");
        }
        let disabled = json!({"max_tokens": 10, "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [thinking_block("hmm")]},
            {"role": "user", "content": [{"type": "thinking", "thinking": "x", "signature": "y"}]}]});
        let all = check(&disabled).join("\n");
        assert!(
            all.contains("messages[2].content[0]: thinking blocks belong to assistant turns"),
            "{all}"
        );
        assert!(
            all.contains(
                "messages[2].content[0]: the thinking block or its signature was modified"
            ),
            "{all}"
        );
        assert!(!all.contains("messages[1]"), "{all}");
    }
}
