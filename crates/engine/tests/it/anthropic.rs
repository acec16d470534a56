//! `AnthropicProvider` against a local server.

use std::time::{Duration, Instant};

use draftsmith_engine::model::{
    FinishReason, Message, ModelError, ModelEvent, Part, Provider, Speaker, ToolCall, Usage,
};
use draftsmith_engine::providers::anthropic::AnthropicProvider;
use futures::StreamExt;
use pretty_assertions::assert_eq;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::{
    MockServer, Reply, calls_of, collect, finishes_of, fixture, full_request, reasoning_of,
    refused_base_url, simple_request, text_of,
};

fn provider(server: &MockServer) -> AnthropicProvider {
    AnthropicProvider::new(server.base_url(), None, reqwest::Client::new())
}

async fn run(reply: Reply) -> (Vec<ModelEvent>, Option<ModelError>) {
    let server = MockServer::start(reply).await;
    let stream = provider(&server)
        .stream(simple_request(), CancellationToken::new())
        .await
        .map_err(|error| error.to_string())
        .unwrap();
    collect(stream).await
}

async fn start_error(provider: &AnthropicProvider) -> ModelError {
    match provider
        .stream(simple_request(), CancellationToken::new())
        .await
    {
        Ok(_) => panic!("expected the request to fail"),
        Err(error) => error,
    }
}

/// A minimal well-formed stream ending with `stop_reason`.
fn stream_with_stop_reason(stop_reason: &str) -> String {
    format!(
        "event: message_start\n\
         data: {{\"type\":\"message_start\",\"message\":{{\"usage\":{{\"input_tokens\":3,\"output_tokens\":1}}}}}}\n\n\
         event: content_block_start\n\
         data: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\n\
         event: content_block_delta\n\
         data: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"x\"}}}}\n\n\
         event: content_block_stop\n\
         data: {{\"type\":\"content_block_stop\",\"index\":0}}\n\n\
         event: message_delta\n\
         data: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"{stop_reason}\"}},\"usage\":{{\"output_tokens\":2}}}}\n\n\
         event: message_stop\n\
         data: {{\"type\":\"message_stop\"}}\n\n"
    )
}

#[tokio::test]
async fn thinking_text_and_split_tool_call() {
    let server = MockServer::start(Reply::Sse(fixture("anthropic_text_and_tool.sse"))).await;
    let stream = provider(&server)
        .stream(simple_request(), CancellationToken::new())
        .await
        .map_err(|error| error.to_string())
        .unwrap();
    let (events, error) = collect(stream).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::ReasoningDelta {
                text: "The user wants ".to_owned()
            },
            ModelEvent::ReasoningDelta {
                text: "the README.".to_owned()
            },
            // The whole block with its signature, to send back with the turn.
            ModelEvent::Thinking {
                thinking: "The user wants the README.".to_owned(),
                signature: "c2lnbmF0dXJl".to_owned(),
            },
            ModelEvent::TextDelta {
                text: "I'll read ".to_owned()
            },
            ModelEvent::TextDelta {
                text: "the README.".to_owned()
            },
            ModelEvent::ToolCall(ToolCall {
                id: "toolu_01".to_owned(),
                name: "read_file".to_owned(),
                arguments: r#"{"path": "README.md"}"#.to_owned(),
            }),
            ModelEvent::Finished {
                reason: FinishReason::ToolCalls,
                // Full-rate input and cache reads apart.
                usage: Some(Usage {
                    input_tokens: 100,
                    output_tokens: 57,
                    cache_read_tokens: 20,
                    ..Usage::default()
                }),
            },
        ]
    );
    assert_eq!(text_of(&events), "I'll read the README.");
    assert_eq!(reasoning_of(&events), "The user wants the README.");
    let request = server.single_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/messages");
    assert!(request.headers.get("x-api-key").is_none());
    assert_eq!(request.headers["anthropic-version"], "2023-06-01");
}

#[tokio::test]
async fn parallel_tool_calls() {
    let (events, error) = run(Reply::Sse(fixture("anthropic_parallel_tools.sse"))).await;
    assert_eq!(error, None);
    assert_eq!(
        calls_of(&events),
        vec![
            ToolCall {
                id: "toolu_a".to_owned(),
                name: "read_file".to_owned(),
                arguments: r#"{"path": "a.txt"}"#.to_owned(),
            },
            ToolCall {
                id: "toolu_b".to_owned(),
                name: "list_dir".to_owned(),
                arguments: r#"{"path": "src"}"#.to_owned(),
            },
            // No input deltas at all: an empty object.
            ToolCall {
                id: "toolu_c".to_owned(),
                name: "git_status".to_owned(),
                arguments: "{}".to_owned(),
            },
        ]
    );
    assert_eq!(
        finishes_of(&events),
        vec![ModelEvent::Finished {
            reason: FinishReason::ToolCalls,
            usage: Some(Usage {
                input_tokens: 50,
                output_tokens: 80,
                ..Usage::default()
            }),
        }]
    );
    assert_eq!(events.last(), finishes_of(&events).last());
}

#[tokio::test]
async fn stop_reasons_are_mapped() {
    for (wire, expected) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("tool_use", FinishReason::ToolCalls),
        ("max_tokens", FinishReason::Length),
        ("refusal", FinishReason::Other),
    ] {
        let (events, error) = run(Reply::Sse(stream_with_stop_reason(wire))).await;
        assert_eq!(error, None, "{wire}");
        assert_eq!(text_of(&events), "x", "{wire}");
        assert_eq!(
            finishes_of(&events),
            vec![ModelEvent::Finished {
                reason: expected,
                usage: Some(Usage {
                    input_tokens: 3,
                    output_tokens: 2,
                    ..Usage::default()
                }),
            }],
            "{wire}"
        );
    }
}

#[tokio::test]
async fn request_body_headers_and_endpoint() {
    let server = MockServer::start(Reply::Sse(stream_with_stop_reason("end_turn"))).await;
    let provider = AnthropicProvider::new(
        format!("{}/", server.base_url()),
        Some("sk-ant-test".to_owned()),
        reqwest::Client::new(),
    );
    let stream = provider
        .stream(full_request(), CancellationToken::new())
        .await
        .map_err(|error| error.to_string())
        .unwrap();
    let (_, error) = collect(stream).await;
    assert_eq!(error, None);

    let request = server.single_request();
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.headers["x-api-key"], "sk-ant-test");
    assert_eq!(request.headers["anthropic-version"], "2023-06-01");
    assert_eq!(request.headers["content-type"], "application/json");
    assert!(request.headers.get("authorization").is_none());
    assert_eq!(
        request.body,
        json!({
            "model": "test-model",
            "system": "You are a coding agent.",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Read the README and list src."}]
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Reading both."},
                        {"type": "tool_use", "id": "call_1", "name": "read_file", "input": {"path": "README.md"}},
                        // Arguments that are not JSON are sent as an empty object.
                        {"type": "tool_use", "id": "call_2", "name": "list_dir", "input": {}}
                    ]
                },
                {
                    // The results and the following user text are merged into one message.
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "call_1", "content": "{\"content\":\"hello\"}", "is_error": false},
                        {"type": "tool_result", "tool_use_id": "call_2", "content": "{\"error\":\"invalid arguments\"}", "is_error": true},
                        {"type": "text", "text": "Also, be quick."}
                    ]
                }
            ],
            "tools": [
                {
                    "name": "read_file",
                    "description": "Reads a file.",
                    "input_schema": {
                        "type": "object",
                        "properties": {"path": {"type": "string"}},
                        "required": ["path"]
                    }
                },
                {
                    "name": "list_dir",
                    "description": "Lists a directory.",
                    "input_schema": {
                        "type": "object",
                        "properties": {"path": {"type": "string"}}
                    }
                }
            ],
            "max_tokens": 4096,
            "stream": true
        })
    );
}

#[tokio::test]
async fn same_role_messages_merge_with_tool_results_first() {
    let server = MockServer::start(Reply::Sse(stream_with_stop_reason("end_turn"))).await;
    let mut request = simple_request();
    request.tools.clear();
    request.messages = vec![
        Message {
            speaker: Speaker::User,
            parts: vec![Part::Text {
                text: "Go.".to_owned(),
            }],
        },
        Message {
            speaker: Speaker::Assistant,
            parts: vec![Part::ToolCall(ToolCall {
                id: "t1".to_owned(),
                name: "run".to_owned(),
                arguments: "[1, 2]".to_owned(),
            })],
        },
        // An empty assistant turn is dropped rather than sent as an empty message.
        Message {
            speaker: Speaker::Assistant,
            parts: vec![Part::Text {
                text: String::new(),
            }],
        },
        Message {
            speaker: Speaker::User,
            parts: vec![Part::Text {
                text: "Note first.".to_owned(),
            }],
        },
        Message {
            speaker: Speaker::User,
            parts: vec![Part::ToolResult {
                call_id: "t1".to_owned(),
                content: "ok".to_owned(),
                is_error: false,
            }],
        },
    ];
    let stream = provider(&server)
        .stream(request, CancellationToken::new())
        .await
        .map_err(|error| error.to_string())
        .unwrap();
    collect(stream).await;
    assert_eq!(
        server.single_request().body,
        json!({
            "model": "test-model",
            "system": "Be brief.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Go."}]},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "run", "input": {}}]
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": false},
                        {"type": "text", "text": "Note first."}
                    ]
                }
            ],
            "max_tokens": 256,
            "stream": true
        })
    );
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let server = MockServer::start(Reply::Status {
        status: 429,
        headers: vec![("retry-after", "12".to_owned())],
        body: r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#.to_owned(),
    })
    .await;
    assert_eq!(
        start_error(&provider(&server)).await,
        ModelError::Http {
            status: 429,
            message: "Number of request tokens has exceeded your per-minute rate limit".to_owned(),
            retry_after: Some(Duration::from_secs(12)),
        }
    );
}

#[tokio::test]
async fn server_error_carries_the_providers_message() {
    let server = MockServer::start(Reply::Status {
        status: 500,
        headers: Vec::new(),
        body: r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#
            .to_owned(),
    })
    .await;
    assert_eq!(
        start_error(&provider(&server)).await,
        ModelError::Http {
            status: 500,
            message: "Internal server error".to_owned(),
            retry_after: None,
        }
    );
}

#[tokio::test]
async fn overloaded_event_is_529() {
    let (events, error) = run(Reply::Sse(fixture("anthropic_overloaded.sse"))).await;
    assert!(events.is_empty(), "{events:?}");
    let error = error.unwrap();
    assert_eq!(
        error,
        ModelError::Http {
            status: 529,
            message: "Overloaded".to_owned(),
            retry_after: None,
        }
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn other_error_event_is_500() {
    let body = "event: error\n\
                data: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"boom\"}}\n\n";
    let (_, error) = run(Reply::Sse(body.to_owned())).await;
    assert_eq!(
        error,
        Some(ModelError::Http {
            status: 500,
            message: "boom".to_owned(),
            retry_after: None,
        })
    );
}

#[tokio::test]
async fn malformed_json_line_fails_the_stream() {
    let (events, error) = run(Reply::Sse(fixture("anthropic_malformed.sse"))).await;
    assert!(finishes_of(&events).is_empty());
    assert!(
        matches!(error, Some(ModelError::MalformedStream(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn cut_stream_is_malformed() {
    let (events, error) = run(Reply::Sse(fixture("anthropic_truncated.sse"))).await;
    assert_eq!(text_of(&events), "Hello");
    assert!(finishes_of(&events).is_empty());
    assert!(
        matches!(error, Some(ModelError::MalformedStream(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_connect() {
    let provider = AnthropicProvider::new(refused_base_url().await, None, reqwest::Client::new());
    let error = start_error(&provider).await;
    assert!(matches!(error, ModelError::Connect(_)), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn cancel_mid_stream_stops_promptly() {
    let server = MockServer::start(Reply::Hang(vec![
        "event: message_start\n\
         data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
         event: content_block_start\n\
         data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"Hel\"}}\n\n"
            .to_owned(),
    ]))
    .await;
    let cancel = CancellationToken::new();
    let mut stream = provider(&server)
        .stream(simple_request(), cancel.clone())
        .await
        .map_err(|error| error.to_string())
        .unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        ModelEvent::TextDelta {
            text: "Hel".to_owned()
        }
    );
    let started = Instant::now();
    cancel.cancel();
    let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("cancellation was not noticed");
    assert_eq!(next, Some(Err(ModelError::Cancelled)));
    assert!(stream.next().await.is_none());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn idle_stream_times_out() {
    let server = MockServer::start(Reply::Hang(vec![
        "event: ping\ndata: {\"type\":\"ping\"}\n\n".to_owned(),
    ]))
    .await;
    let stream = provider(&server)
        .with_idle_timeout(Duration::from_millis(300))
        .stream(simple_request(), CancellationToken::new())
        .await
        .map_err(|error| error.to_string())
        .unwrap();
    let (events, error) = collect(stream).await;
    assert!(events.is_empty());
    assert_eq!(error, Some(ModelError::Timeout));
}
