//! Scripted failures: error attempts, cut streams, malformed lines, delays, and the
//! tool-result invariant.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const RETRY_SCRIPT: &str = r#"{
  "scenarios": [{
    "name": "retry",
    "turns": [{
      "attempts": [
        {"error": {"status": 500, "message": "upstream exploded", "retry_after": 2}},
        {"steps": [{"text": "second time lucky"}]}
      ]
    }, [
        {"error": {"status": 429, "message": "slow down", "retry_after": 1}},
        {"error": {"status": 529, "message": "overloaded"}},
        {"steps": [{"text": "turn one"}]}
    ]]
  }]
}"#;

#[tokio::test]
async fn first_attempt_fails_then_retry_succeeds() {
    let model = start(RETRY_SCRIPT).await;
    let url = openai_url(&model);
    let (status, headers, body) = post_json(&url, &openai_request("s", "u", 0, true)).await;
    assert_eq!(status, 500);
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(body["error"]["message"], "upstream exploded");
    assert_eq!(body["error"]["type"], "server_error");
    assert!(body["error"].get("code").is_some());

    let streamed = post_stream(&url, &openai_request("s", "u", 0, true)).await;
    assert_eq!(streamed.status, 200);
    assert_eq!(openai_text(&streamed.chunks()), "second time lucky");
    // The last attempt repeats.
    let streamed = post_stream(&url, &openai_request("s", "u", 0, true)).await;
    assert_eq!(openai_text(&streamed.chunks()), "second time lucky");

    let attempts: Vec<usize> = model.requests().iter().map(|r| r.attempt).collect();
    assert_eq!(attempts, vec![0, 1, 2]);
}

#[tokio::test]
async fn anthropic_error_shape_and_attempt_sequence() {
    let model = start(RETRY_SCRIPT).await;
    let url = anthropic_url(&model);
    let (status, headers, body) = post_json(&url, &anthropic_request("s", "u", 1, true)).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    );
    let (status, headers, body) = post_json(&url, &anthropic_request("s", "u", 1, true)).await;
    assert_eq!(status, 529);
    assert!(headers.get("retry-after").is_none());
    assert_eq!(body["error"]["type"], "overloaded_error");
    let streamed = post_stream(&url, &anthropic_request("s", "u", 1, true)).await;
    assert_eq!(streamed.status, 200);
    assert!(streamed.raw.contains("turn one"));
}

#[tokio::test]
async fn cut_stream_has_no_finish_and_no_done() {
    let model = start(
        r#"{"scenarios":[{"name":"cut","turns":[{"steps":[
            {"text":"partial answ","chunk":4},{"cut":true},{"text":"never sent"}]}]}]}"#,
    )
    .await;
    let streamed = post_stream(&openai_url(&model), &openai_request("s", "u", 0, true)).await;
    assert_eq!(streamed.status, 200);
    assert!(!streamed.clean_end, "the connection should break");
    assert!(!streamed.raw.contains("[DONE]"));
    assert!(!streamed.raw.contains("never sent"));
    let chunks = streamed.chunks();
    assert_eq!(openai_text(&chunks), "partial answ");
    assert!(chunks.iter().all(|c| {
        c.pointer("/choices/0/finish_reason")
            .is_none_or(Value::is_null)
    }));

    let streamed = post_stream(
        &anthropic_url(&model),
        &anthropic_request("s", "u", 0, true),
    )
    .await;
    assert!(!streamed.clean_end);
    assert!(!streamed.raw.contains("message_stop"));
    assert!(!streamed.raw.contains("message_delta"));
    assert!(streamed.raw.contains("part"));

    // Non-streaming: the body breaks off.
    let response = client()
        .post(openai_url(&model))
        .json(&openai_request("s", "u", 0, false))
        .send()
        .await;
    if let Ok(r) = response {
        assert!(r.bytes().await.is_err());
    }
}

#[tokio::test]
async fn malformed_line_is_sent_verbatim() {
    let model = start(
        r#"{"scenarios":[{"name":"bad","turns":[{"steps":[
            {"text":"before "},{"malformed":"{\"choices\": [oops"},{"text":"after"}]}]}]}"#,
    )
    .await;
    let streamed = post_stream(&openai_url(&model), &openai_request("s", "u", 0, true)).await;
    assert!(streamed.clean_end);
    let bad: Vec<&Sse> = streamed
        .events
        .iter()
        .filter(|e| e.data != "[DONE]" && serde_json::from_str::<Value>(&e.data).is_err())
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].data, r#"{"choices": [oops"#);
    let good: Vec<Value> = streamed
        .events
        .iter()
        .filter_map(|e| serde_json::from_str(&e.data).ok())
        .collect();
    assert_eq!(openai_text(&good), "before after");
    assert_eq!(streamed.events.last().unwrap().data, "[DONE]");

    let streamed = post_stream(
        &anthropic_url(&model),
        &anthropic_request("s", "u", 0, true),
    )
    .await;
    assert!(streamed.raw.contains("data: {\"choices\": [oops\n\n"));
    assert!(streamed.raw.contains("message_stop"));
}

#[tokio::test]
async fn delays_pace_the_stream() {
    let model = start(
        r#"{"chunk_delay_ms": 20, "scenarios":[{"name":"slow","turns":[{"steps":[
            {"text":"abcd","chunk":1},{"delay_ms":150},{"text":"e"}]}]}]}"#,
    )
    .await;
    let started = Instant::now();
    let streamed = post_stream(&openai_url(&model), &openai_request("s", "u", 0, true)).await;
    let elapsed = started.elapsed();
    assert_eq!(openai_text(&streamed.chunks()), "abcde");
    // 8 events after the first, 20 ms apart, plus the 150 ms pause.
    assert!(
        elapsed >= Duration::from_millis(150 + 7 * 20),
        "{elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn orphan_tool_result_is_a_400_and_a_violation() {
    let model = start(SHAPE_SCRIPT).await;
    let good = json!({
        "model": "coder", "stream": true,
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "write", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_a", "content": "ok"}
        ]
    });
    let streamed = post_stream(&openai_url(&model), &good).await;
    assert_eq!(streamed.status, 200);
    assert!(model.violations().is_empty());

    // The tool result comes before the call it answers.
    let bad = json!({
        "model": "coder", "stream": true,
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "tool", "tool_call_id": "call_zz", "content": "ok"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_zz", "type": "function", "function": {"name": "write", "arguments": "{}"}}]}
        ]
    });
    let (status, _, body) = post_json(&openai_url(&model), &bad).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("call_zz"), "{message}");
    assert_eq!(model.violations().len(), 1);
    assert!(model.violations()[0].contains("call_zz"));

    let bad = json!({
        "model": "claude", "max_tokens": 10, "stream": true,
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "x", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "fine"},
                {"type": "tool_result", "tool_use_id": "toolu_404", "content": "orphan"}
            ]}
        ]
    });
    let (status, _, body) = post_json(&anthropic_url(&model), &bad).await;
    assert_eq!(status, 400);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("toolu_404")
    );
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"toolu_1\"")
    );
    assert_eq!(model.violations().len(), 2);

    let listed: Vec<String> = client()
        .get(format!("http://{}/_mock/violations", model.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, model.violations());
}

#[tokio::test]
async fn invalid_json_body_is_a_400() {
    let model = start(SHAPE_SCRIPT).await;
    let response = client()
        .post(openai_url(&model))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
}
