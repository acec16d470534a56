//! Scenario matching and stateless turn selection.

use serde_json::{Value, json};

use crate::support::*;

const SCRIPT: &str = r#"{
  "scenarios": [
    {"name": "alpha", "match": {"contains": "ALPHA-SYSTEM"},
     "turns": [{"steps": [{"text": "alpha 0"}]}, {"steps": [{"text": "alpha 1"}]}]},
    {"name": "beta", "match": {"contains": "please beta"},
     "turns": [{"steps": [{"text": "beta 0"}]}]},
    {"name": "fallback",
     "turns": [{"steps": [{"text": "fallback 0"}]}, {"steps": [{"text": "fallback 1"}]}]}
  ]
}"#;

async fn openai_reply(model: &draftsmith_mockmodel::MockModel, body: &Value) -> String {
    let streamed = post_stream(&openai_url(model), body).await;
    assert_eq!(streamed.status, 200, "{}", streamed.raw);
    openai_text(&streamed.chunks())
}

#[tokio::test]
async fn turn_index_is_the_number_of_assistant_messages() {
    let model = start(SCRIPT).await;
    assert_eq!(
        openai_reply(&model, &openai_request("ALPHA-SYSTEM", "hi", 0, true)).await,
        "alpha 0"
    );
    assert_eq!(
        openai_reply(&model, &openai_request("ALPHA-SYSTEM", "hi", 1, true)).await,
        "alpha 1"
    );
    // The same turn again: no hidden state advances.
    assert_eq!(
        openai_reply(&model, &openai_request("ALPHA-SYSTEM", "hi", 0, true)).await,
        "alpha 0"
    );
    // Past the last turn.
    assert_eq!(
        openai_reply(&model, &openai_request("ALPHA-SYSTEM", "hi", 2, true)).await,
        "(script finished)"
    );
    let (_, _, body) = post_json(
        &anthropic_url(&model),
        &anthropic_request("ALPHA-SYSTEM", "hi", 5, false),
    )
    .await;
    assert_eq!(body["content"][0]["text"], "(script finished)");
    assert_eq!(body["stop_reason"], "end_turn");

    let turns: Vec<(String, usize)> = model
        .requests()
        .iter()
        .map(|r| (r.scenario.clone(), r.turn))
        .collect();
    assert_eq!(
        turns,
        vec![
            ("alpha".to_owned(), 0),
            ("alpha".to_owned(), 1),
            ("alpha".to_owned(), 0),
            ("alpha".to_owned(), 2),
            ("alpha".to_owned(), 5),
        ]
    );
}

#[tokio::test]
async fn tool_messages_do_not_count_as_turns() {
    let model = start(SCRIPT).await;
    let body = json!({
        "model": "coder", "stream": true,
        "messages": [
            {"role": "system", "content": "x"},
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "file text"}
        ]
    });
    assert_eq!(openai_reply(&model, &body).await, "fallback 1");
}

#[tokio::test]
async fn first_matching_scenario_wins() {
    let model = start(SCRIPT).await;
    // System prompt match.
    assert_eq!(
        openai_reply(
            &model,
            &openai_request("ALPHA-SYSTEM", "please beta", 0, true)
        )
        .await,
        "alpha 0"
    );
    // User text match, in any user message.
    assert_eq!(
        openai_reply(&model, &openai_request("sys", "please beta", 0, true)).await,
        "beta 0"
    );
    // Anthropic: the top-level system prompt and text blocks count.
    let (_, _, body) = post_json(
        &anthropic_url(&model),
        &anthropic_request("sys", "oh please beta now", 0, false),
    )
    .await;
    assert_eq!(body["content"][0]["text"], "beta 0");
    let (_, _, body) = post_json(
        &anthropic_url(&model),
        &anthropic_request("ALPHA-SYSTEM", "x", 0, false),
    )
    .await;
    assert_eq!(body["content"][0]["text"], "alpha 0");
    // No match: the catch-all.
    assert_eq!(
        openai_reply(&model, &openai_request("sys", "hello", 0, true)).await,
        "fallback 0"
    );
    // Assistant text does not count for matching.
    let mut body = openai_request("sys", "hello", 0, true);
    body["messages"]
        .as_array_mut()
        .unwrap()
        .insert(1, json!({"role": "assistant", "content": "please beta"}));
    assert_eq!(openai_reply(&model, &body).await, "fallback 1");
}

#[tokio::test]
async fn no_matching_scenario_is_a_400() {
    let model = start(
        r#"{"scenarios":[{"name":"only","match":{"contains":"needle"},"turns":[{"steps":[{"text":"x"}]}]}]}"#,
    )
    .await;
    let (status, _, body) =
        post_json(&openai_url(&model), &openai_request("s", "hay", 0, true)).await;
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("no scenario matches"), "{message}");
    assert!(message.contains("only"), "{message}");
    assert_eq!(model.requests()[0].scenario, "");
}

#[tokio::test]
async fn concurrent_conversations_each_get_their_turn() {
    let model = start(SCRIPT).await;
    let url = openai_url(&model);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..40 {
        let url = url.clone();
        set.spawn(async move {
            let turn = i % 2;
            let streamed =
                post_stream(&url, &openai_request("ALPHA-SYSTEM", "go", turn, true)).await;
            (turn, openai_text(&streamed.chunks()))
        });
    }
    while let Some(result) = set.join_next().await {
        let (turn, text) = result.unwrap();
        assert_eq!(text, format!("alpha {turn}"));
    }
    assert_eq!(model.requests().len(), 40);
}
