//! The Messages API's rules, thinking signatures and the simulated prompt cache, over HTTP.

use serde_json::{Value, json};

use crate::support::*;

const THINKING_SCRIPT: &str = r#"{"scenarios": [{"name": "think", "turns": [
    {"steps": [{"reasoning": "Let me look.", "chunk": 5}, {"redacted_thinking": "secret"},
               {"tool_call": {"id": "toolu_1", "name": "read", "arguments": {"path": "a"}}}]},
    {"steps": [{"text": "Done."}]}
]}]}"#;

/// The assistant content blocks a streamed reply describes, as a client keeps them.
fn blocks_of(events: &[Sse]) -> Vec<Value> {
    let mut blocks: Vec<Value> = Vec::new();
    for event in events {
        let data = event.json();
        match data["type"].as_str() {
            Some("content_block_start") => blocks.push(data["content_block"].clone()),
            Some("content_block_delta") => {
                let block = blocks.last_mut().unwrap();
                let delta = &data["delta"];
                let (field, piece) = match delta["type"].as_str().unwrap() {
                    "thinking_delta" => ("thinking", &delta["thinking"]),
                    "signature_delta" => ("signature", &delta["signature"]),
                    "text_delta" => ("text", &delta["text"]),
                    _ => continue,
                };
                let joined = format!(
                    "{}{}",
                    block[field].as_str().unwrap_or(""),
                    piece.as_str().unwrap()
                );
                block[field] = Value::String(joined);
            }
            _ => {}
        }
    }
    blocks
}

fn thinking_request(assistant: Option<Vec<Value>>) -> Value {
    let mut messages = vec![json!({"role": "user", "content": [{"type": "text", "text": "go"}]})];
    if let Some(content) = assistant {
        messages.push(json!({"role": "assistant", "content": content}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "file"}]}));
    }
    json!({
        "model": "claude-mock", "max_tokens": 4096, "stream": true,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": messages,
    })
}

#[tokio::test]
async fn thinking_blocks_go_back_only_unmodified() {
    let model = start(THINKING_SCRIPT).await;
    let first = post_stream(&anthropic_url(&model), &thinking_request(None)).await;
    assert_eq!(first.status, 200);
    let mut blocks = blocks_of(&first.events);
    let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["thinking", "redacted_thinking", "tool_use"]);
    assert_eq!(blocks[0]["thinking"], "Let me look.");
    assert!(
        blocks[0]["signature"]
            .as_str()
            .unwrap()
            .starts_with("mock-sig-")
    );
    blocks[2]["input"] = json!({"path": "a"});

    let ok = post_stream(
        &anthropic_url(&model),
        &thinking_request(Some(blocks.clone())),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.raw);

    let mut edited = blocks.clone();
    edited[0]["thinking"] = json!("Let me look!");
    let refused = post_stream(&anthropic_url(&model), &thinking_request(Some(edited))).await;
    assert_eq!(refused.status, 400);
    assert!(refused.raw.contains("was modified"), "{}", refused.raw);

    let without: Vec<Value> = blocks[2..].to_vec();
    let refused = post_stream(&anthropic_url(&model), &thinking_request(Some(without))).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.raw.contains("must start with its thinking block"),
        "{}",
        refused.raw
    );

    // With thinking disabled the API ignores thinking blocks; so does the server.
    let mut disabled = thinking_request(Some(blocks));
    disabled.as_object_mut().unwrap().remove("thinking");
    let accepted = post_stream(&anthropic_url(&model), &disabled).await;
    assert_eq!(accepted.status, 200, "{}", accepted.raw);
    assert_eq!(model.violations().len(), 2);
}

#[tokio::test]
async fn markers_are_counted_and_the_cache_is_simulated() {
    let model =
        start(r#"{"scenarios": [{"name": "s", "turns": [{"steps": [{"text": "ok"}]}]}]}"#).await;
    let marker = json!({"type": "ephemeral"});
    let request = |user: &str, markers: usize| {
        let mut content: Vec<Value> = (0..markers)
            .map(|i| json!({"type": "text", "text": format!("{user} part {i} {}", "x".repeat(800)), "cache_control": marker}))
            .collect();
        content.push(json!({"type": "text", "text": user}));
        let mut body = anthropic_request("sys", "unused", 0, true);
        body["messages"] = json!([{"role": "user", "content": content}]);
        body
    };
    let usage_of = |s: &Streamed| s.events[0].json()["message"]["usage"].clone();
    let first = post_stream(&anthropic_url(&model), &request("a", 2)).await;
    let written = usage_of(&first)["cache_creation_input_tokens"]
        .as_u64()
        .unwrap();
    assert!(written > 400, "{}", usage_of(&first));
    assert_eq!(usage_of(&first)["cache_read_input_tokens"], 0);
    let second = post_stream(&anthropic_url(&model), &request("a", 2)).await;
    assert_eq!(usage_of(&second)["cache_read_input_tokens"], written);
    assert_eq!(usage_of(&second)["cache_creation_input_tokens"], 0);
    let recorded = model.requests();
    assert_eq!(recorded[1].usage.unwrap().cache_read_tokens, written);

    let five = post_stream(&anthropic_url(&model), &request("b", 5)).await;
    assert_eq!(five.status, 400);
    assert!(
        five.raw
            .contains("at most 4 cache_control markers, found 5"),
        "{}",
        five.raw
    );
}
