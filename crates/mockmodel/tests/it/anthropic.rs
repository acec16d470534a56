//! The Anthropic Messages dialect: stream and JSON shapes.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn stream_shape() {
    let model = start(SHAPE_SCRIPT).await;
    let streamed = post_stream(
        &anthropic_url(&model),
        &anthropic_request("sys", "go", 0, true),
    )
    .await;
    assert_eq!(streamed.status, 200);
    assert!(streamed.clean_end);
    assert!(!streamed.raw.contains("[DONE]"));

    // Every event has an `event:` line naming the data's type.
    let events: Vec<(String, Value)> = streamed
        .events
        .iter()
        .map(|e| (e.event.clone().unwrap(), e.json()))
        .collect();
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str());
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "message_start");
    assert_eq!(names[names.len() - 2], "message_delta");
    assert_eq!(names[names.len() - 1], "message_stop");

    let start_msg = &events[0].1["message"];
    assert!(start_msg["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(start_msg["type"], "message");
    assert_eq!(start_msg["role"], "assistant");
    assert_eq!(start_msg["model"], "claude-mock");
    assert_eq!(start_msg["content"], json!([]));
    assert_eq!(start_msg["usage"]["input_tokens"], 120);

    // Blocks: thinking (0), text (1), tool_use (2), tool_use (3), each started and stopped once.
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| d)
        .collect();
    let kinds: Vec<&str> = starts
        .iter()
        .map(|d| d["content_block"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["thinking", "text", "tool_use", "tool_use"]);
    for (i, start) in starts.iter().enumerate() {
        assert_eq!(start["index"], i);
    }
    let stops: Vec<u64> = events
        .iter()
        .filter(|(n, _)| n == "content_block_stop")
        .map(|(_, d)| d["index"].as_u64().unwrap())
        .collect();
    assert_eq!(stops, vec![0, 1, 2, 3]);

    let deltas = |index: u64, kind: &str, field: &str| -> Vec<String> {
        events
            .iter()
            .filter(|(n, d)| {
                n == "content_block_delta" && d["index"] == index && d["delta"]["type"] == kind
            })
            .map(|(_, d)| d["delta"][field].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        deltas(0, "thinking_delta", "thinking").concat(),
        "Let me think about it."
    );
    assert_eq!(deltas(0, "thinking_delta", "thinking").len(), 5);
    assert_eq!(deltas(0, "signature_delta", "signature").len(), 1);
    assert_eq!(
        deltas(1, "text_delta", "text").concat(),
        "I will write two files."
    );
    let args = deltas(2, "input_json_delta", "partial_json");
    assert_eq!(args.len(), 3);
    assert_eq!(args.concat(), shape_args());
    assert_eq!(starts[2]["content_block"]["id"], "call_a");
    assert_eq!(starts[2]["content_block"]["name"], "write");
    assert_eq!(starts[2]["content_block"]["input"], json!({}));
    assert!(
        starts[3]["content_block"]["id"]
            .as_str()
            .unwrap()
            .starts_with("toolu_")
    );
    assert_eq!(
        deltas(3, "input_json_delta", "partial_json").concat(),
        r#"{"path":"b.txt"}"#
    );

    let message_delta = &events[events.len() - 2].1;
    assert_eq!(message_delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(message_delta["usage"]["output_tokens"], 34);
}

#[tokio::test]
async fn text_turn_ends_with_end_turn() {
    let model = start(SHAPE_SCRIPT).await;
    let streamed = post_stream(
        &anthropic_url(&model),
        &anthropic_request("sys", "go", 1, true),
    )
    .await;
    let events: Vec<Value> = streamed.events.iter().map(|e| e.json()).collect();
    let text: String = events
        .iter()
        .filter(|d| d["type"] == "content_block_delta")
        .map(|d| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "All done.");
    let delta = events
        .iter()
        .find(|d| d["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(events.last().unwrap()["type"], "message_stop");
}

#[tokio::test]
async fn interleaved_steps_open_new_blocks() {
    let model = start(
        r#"{"scenarios":[{"name":"t","turns":[{"steps":[
            {"text":"a"},{"text":"b"},{"reasoning":"r"},{"text":"c"}],"finish":"length"}]}]}"#,
    )
    .await;
    let streamed = post_stream(
        &anthropic_url(&model),
        &anthropic_request("s", "u", 0, true),
    )
    .await;
    let events: Vec<Value> = streamed.events.iter().map(|e| e.json()).collect();
    let kinds: Vec<&str> = events
        .iter()
        .filter(|d| d["type"] == "content_block_start")
        .map(|d| d["content_block"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["text", "thinking", "text"]);
    let delta = events
        .iter()
        .find(|d| d["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
}

#[tokio::test]
async fn non_streaming_message() {
    let model = start(SHAPE_SCRIPT).await;
    let (status, _, body) = post_json(
        &anthropic_url(&model),
        &anthropic_request("sys", "go", 0, false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["usage"]["input_tokens"], 120);
    assert_eq!(body["usage"]["output_tokens"], 34);
    let content = body["content"].as_array().unwrap();
    assert_eq!(content.len(), 4);
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(content[0]["thinking"], "Let me think about it.");
    assert!(content[0]["signature"].is_string());
    assert_eq!(
        content[1],
        json!({"type": "text", "text": "I will write two files."})
    );
    assert_eq!(content[2]["type"], "tool_use");
    assert_eq!(content[2]["id"], "call_a");
    assert_eq!(
        content[2]["input"],
        json!({"path": "a.txt", "content": "hello \"world\"\n"})
    );
    assert_eq!(content[3]["name"], "read");
    assert_eq!(content[3]["input"], json!({"path": "b.txt"}));
}
