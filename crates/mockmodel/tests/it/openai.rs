//! The OpenAI Chat Completions dialect: stream and JSON shapes.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn stream_shape() {
    let model = start(SHAPE_SCRIPT).await;
    let body = openai_request("sys", "write files", 0, true);
    let streamed = post_stream(&openai_url(&model), &body).await;
    assert_eq!(streamed.status, 200);
    assert!(streamed.clean_end);
    assert!(
        streamed.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // OpenAI sends no `event:` lines, and ends with [DONE].
    assert!(streamed.events.iter().all(|e| e.event.is_none()));
    assert_eq!(streamed.events.last().unwrap().data, "[DONE]");
    assert_eq!(
        streamed
            .events
            .iter()
            .filter(|e| e.data == "[DONE]")
            .count(),
        1
    );

    let chunks = streamed.chunks();
    let id = chunks[0]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("chatcmpl-"));
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], id.as_str());
        assert_eq!(c["model"], "coder");
        assert!(c["created"].as_u64().unwrap() > 1_600_000_000);
        for choice in c["choices"].as_array().unwrap() {
            assert_eq!(choice["index"], 0);
            assert!(choice["delta"].is_object());
        }
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");

    // Text and reasoning arrive separately, in chunks, and reassemble.
    assert_eq!(openai_text(&chunks), "I will write two files.");
    let reasoning: Vec<&str> = chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/reasoning_content")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(reasoning, vec!["Let m", "e thi", "nk ab", "out i", "t."]);
    let text_deltas = chunks
        .iter()
        .filter(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty())
        })
        .count();
    assert_eq!(text_deltas, 6);

    // Tool calls: index 0 in three fragments, index 1 in one, both with ids.
    let fragments: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls"))
        .flat_map(|calls| calls.as_array().unwrap())
        .collect();
    let first: Vec<&&Value> = fragments.iter().filter(|f| f["index"] == 0).collect();
    assert_eq!(first.len(), 3);
    assert_eq!(first[0]["id"], "call_a");
    assert_eq!(first[0]["type"], "function");
    assert_eq!(first[0]["function"]["name"], "write");
    assert!(first[1].get("id").is_none());
    let args: String = first
        .iter()
        .map(|f| f["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(args, shape_args());
    let second: Vec<&&Value> = fragments.iter().filter(|f| f["index"] == 1).collect();
    assert_eq!(second.len(), 1);
    assert!(second[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_ne!(second[0]["id"], "call_a");
    assert_eq!(second[0]["function"]["name"], "read");
    assert_eq!(second[0]["function"]["arguments"], r#"{"path":"b.txt"}"#);

    // Exactly one finish_reason, then the usage chunk with no choices.
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/finish_reason"))
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("tool_calls")]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 120, "completion_tokens": 34, "total_tokens": 154, "prompt_tokens_details": {"cached_tokens": 0}})
    );
}

#[tokio::test]
async fn text_only_stream_finishes_stop_without_usage_unless_asked() {
    let model =
        start(r#"{"scenarios":[{"name":"t","turns":[{"steps":[{"text":"Hello there"}]}]}]}"#).await;
    let mut body = openai_request("sys", "hi", 0, true);
    body.as_object_mut().unwrap().remove("stream_options");
    let streamed = post_stream(&openai_url(&model), &body).await;
    let chunks = streamed.chunks();
    assert_eq!(openai_text(&chunks), "Hello there");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(streamed.events.last().unwrap().data, "[DONE]");
}

#[tokio::test]
async fn explicit_finish_length() {
    let model = start(
        r#"{"scenarios":[{"name":"t","turns":[{"steps":[{"text":"trunc"}],"finish":"length"}]}]}"#,
    )
    .await;
    let streamed = post_stream(&openai_url(&model), &openai_request("s", "u", 0, true)).await;
    let finishes: Vec<Value> = streamed
        .chunks()
        .iter()
        .filter_map(|c| c.pointer("/choices/0/finish_reason").cloned())
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![json!("length")]);
}

#[tokio::test]
async fn non_streaming_completion() {
    let model = start(SHAPE_SCRIPT).await;
    let (status, _, body) =
        post_json(&openai_url(&model), &openai_request("sys", "go", 0, false)).await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["model"], "coder");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "tool_calls");
    let message = &choice["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"], "I will write two files.");
    assert_eq!(message["reasoning_content"], "Let me think about it.");
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "call_a");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "write");
    assert_eq!(calls[0]["function"]["arguments"], shape_args());
    assert_eq!(calls[1]["function"]["name"], "read");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 120, "completion_tokens": 34, "total_tokens": 154, "prompt_tokens_details": {"cached_tokens": 0}})
    );

    // Turn 1 of the same scenario, with estimated usage.
    let (_, _, body) = post_json(&openai_url(&model), &openai_request("sys", "go", 1, false)).await;
    assert_eq!(body["choices"][0]["message"]["content"], "All done.");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["choices"][0]["message"].get("tool_calls").is_none());
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn malformed_arguments_go_out_verbatim() {
    let model = start(
        r#"{"scenarios":[{"name":"t","turns":[{"steps":[
            {"tool_call":{"name":"write","arguments":"{\"path\": \"a","split":2}}]}]}]}"#,
    )
    .await;
    let streamed = post_stream(&openai_url(&model), &openai_request("s", "u", 0, true)).await;
    let args: String = streamed
        .chunks()
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
        })
        .collect();
    assert_eq!(args, r#"{"path": "a"#);
}
