//! `OpenAiProvider` against a local server.

use std::time::{Duration, Instant};

use draftsmith_engine::model::{FinishReason, ModelError, ModelEvent, Provider, ToolCall, Usage};
use draftsmith_engine::providers::openai::OpenAiProvider;
use futures::StreamExt;
use pretty_assertions::assert_eq;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::{
    MockServer, Reply, broken_body_base_url, calls_of, collect, finishes_of, fixture, full_request,
    reasoning_of, refused_base_url, simple_request, text_of,
};

fn provider(server: &MockServer) -> OpenAiProvider {
    OpenAiProvider::new(server.base_url(), None, reqwest::Client::new())
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

async fn start_error(provider: &OpenAiProvider) -> ModelError {
    match provider
        .stream(simple_request(), CancellationToken::new())
        .await
    {
        Ok(_) => panic!("expected the request to fail"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn text_reasoning_and_split_tool_call() {
    let server = MockServer::start(Reply::Sse(fixture("openai_text_and_tool.sse"))).await;
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
                text: "Let me ".to_owned()
            },
            ModelEvent::ReasoningDelta {
                text: "look at the file.".to_owned()
            },
            ModelEvent::TextDelta {
                text: "I'll read ".to_owned()
            },
            ModelEvent::TextDelta {
                text: "the README.".to_owned()
            },
            ModelEvent::ToolCall(ToolCall {
                id: "call_abc".to_owned(),
                name: "read_file".to_owned(),
                arguments: r#"{"path": "README.md"}"#.to_owned(),
            }),
            ModelEvent::Finished {
                reason: FinishReason::ToolCalls,
                usage: Some(Usage {
                    input_tokens: 120,
                    output_tokens: 34,
                    ..Usage::default()
                }),
            },
        ]
    );
    let request = server.single_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    assert!(request.headers.get("authorization").is_none());
}

#[tokio::test]
async fn reasoning_is_never_text() {
    let (events, error) = run(Reply::Sse(fixture("openai_text_and_tool.sse"))).await;
    assert_eq!(error, None);
    assert_eq!(text_of(&events), "I'll read the README.");
    assert_eq!(reasoning_of(&events), "Let me look at the file.");
    let (events, _) = run(Reply::Sse(fixture("openai_parallel_tools.sse"))).await;
    assert_eq!(text_of(&events), "");
    assert_eq!(reasoning_of(&events), "Two files to read.");
}

#[tokio::test]
async fn parallel_tool_calls_come_in_index_order() {
    let (events, error) = run(Reply::Sse(fixture("openai_parallel_tools.sse"))).await;
    assert_eq!(error, None);
    assert_eq!(
        calls_of(&events),
        vec![
            ToolCall {
                id: "call_1".to_owned(),
                name: "read_file".to_owned(),
                arguments: r#"{"path": "a.txt"}"#.to_owned(),
            },
            ToolCall {
                id: "call_2".to_owned(),
                name: "list_dir".to_owned(),
                arguments: r#"{"path": "src"}"#.to_owned(),
            },
        ]
    );
    assert_eq!(
        events.last(),
        Some(&ModelEvent::Finished {
            reason: FinishReason::ToolCalls,
            usage: None,
        })
    );
    assert_eq!(finishes_of(&events).len(), 1);
}

#[tokio::test]
async fn finish_reasons_are_mapped() {
    for (wire, expected) in [
        ("stop", FinishReason::Stop),
        ("tool_calls", FinishReason::ToolCalls),
        ("length", FinishReason::Length),
        ("content_filter", FinishReason::Other),
    ] {
        let body = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"x\"}}}}]}}\n\n\
             data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"{wire}\"}}]}}\n\n\
             data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":1}}}}\n\n\
             data: [DONE]\n\n"
        );
        let (events, error) = run(Reply::Sse(body)).await;
        assert_eq!(error, None, "{wire}");
        assert_eq!(
            finishes_of(&events),
            vec![ModelEvent::Finished {
                reason: expected,
                usage: Some(Usage {
                    input_tokens: 3,
                    output_tokens: 1,
                    ..Usage::default()
                }),
            }],
            "{wire}"
        );
    }
}

#[tokio::test]
async fn done_without_finish_reason_is_a_stop() {
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\n\
                data: [DONE]\n\n";
    let (events, error) = run(Reply::Sse(body.to_owned())).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::TextDelta {
                text: "ok".to_owned()
            },
            ModelEvent::Finished {
                reason: FinishReason::Stop,
                usage: None,
            },
        ]
    );
}

#[tokio::test]
async fn finish_reason_then_end_of_body_is_accepted() {
    let (events, error) = run(Reply::Sse(fixture("openai_finish_without_done.sse"))).await;
    assert_eq!(error, None);
    assert_eq!(
        events,
        vec![
            ModelEvent::TextDelta {
                text: "Done.".to_owned()
            },
            ModelEvent::Finished {
                reason: FinishReason::Stop,
                usage: None,
            },
        ]
    );
}

#[tokio::test]
async fn request_body_headers_and_endpoint() {
    let server = MockServer::start(Reply::Sse(fixture("openai_finish_without_done.sse"))).await;
    // A trailing slash on the base URL is tolerated.
    let provider = OpenAiProvider::new(
        format!("{}/", server.base_url()),
        Some("sk-test".to_owned()),
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
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.headers["authorization"], "Bearer sk-test");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.body,
        json!({
            "model": "test-model",
            "messages": [
                {"role": "system", "content": "You are a coding agent."},
                {"role": "user", "content": "Read the README and list src."},
                {
                    "role": "assistant",
                    "content": "Reading both.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "read_file", "arguments": "{\"path\":\"README.md\"}"}
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "list_dir", "arguments": "{\"path\": \"src\""}
                        }
                    ]
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"content\":\"hello\"}"},
                {"role": "tool", "tool_call_id": "call_2", "content": "{\"error\":\"invalid arguments\"}"},
                {"role": "user", "content": "Also, be quick."}
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "read_file",
                        "description": "Reads a file.",
                        "parameters": {
                            "type": "object",
                            "properties": {"path": {"type": "string"}},
                            "required": ["path"]
                        }
                    }
                },
                {
                    "type": "function",
                    "function": {
                        "name": "list_dir",
                        "description": "Lists a directory.",
                        "parameters": {
                            "type": "object",
                            "properties": {"path": {"type": "string"}}
                        }
                    }
                }
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 4096
        })
    );
}

#[tokio::test]
async fn tools_are_omitted_when_there_are_none() {
    let server = MockServer::start(Reply::Sse(fixture("openai_finish_without_done.sse"))).await;
    let stream = provider(&server)
        .stream(simple_request(), CancellationToken::new())
        .await
        .map_err(|error| error.to_string())
        .unwrap();
    collect(stream).await;
    assert_eq!(
        server.single_request().body,
        json!({
            "model": "test-model",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"}
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 256
        })
    );
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let server = MockServer::start(Reply::Status {
        status: 429,
        headers: vec![("retry-after", "7".to_owned())],
        body: r#"{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}"#.to_owned(),
    })
    .await;
    let error = start_error(&provider(&server)).await;
    assert_eq!(
        error,
        ModelError::Http {
            status: 429,
            message: "Rate limit reached for requests".to_owned(),
            retry_after: Some(Duration::from_secs(7)),
        }
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn server_error_carries_the_providers_message() {
    let server = MockServer::start(Reply::Status {
        status: 500,
        headers: Vec::new(),
        body: r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}"#.to_owned(),
    })
    .await;
    assert_eq!(
        start_error(&provider(&server)).await,
        ModelError::Http {
            status: 500,
            message: "The server had an error while processing your request.".to_owned(),
            retry_after: None,
        }
    );
}

#[tokio::test]
async fn plain_text_error_body_is_bounded() {
    let server = MockServer::start(Reply::Status {
        status: 502,
        headers: Vec::new(),
        body: "<html>bad gateway</html>".repeat(1000),
    })
    .await;
    let ModelError::Http {
        status,
        message,
        retry_after,
    } = start_error(&provider(&server)).await
    else {
        panic!("expected an HTTP error");
    };
    assert_eq!(status, 502);
    assert_eq!(retry_after, None);
    assert!(message.starts_with("<html>bad gateway</html>"));
    assert!(message.chars().count() <= 2001, "{} chars", message.len());
}

#[tokio::test]
async fn malformed_json_line_fails_the_stream() {
    let (events, error) = run(Reply::Sse(fixture("openai_malformed.sse"))).await;
    assert_eq!(
        events,
        vec![ModelEvent::TextDelta {
            text: "Hello".to_owned()
        }]
    );
    assert!(
        matches!(error, Some(ModelError::MalformedStream(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn cut_stream_is_malformed() {
    let (events, error) = run(Reply::Sse(fixture("openai_truncated.sse"))).await;
    assert_eq!(text_of(&events), "Hello, wor");
    assert!(finishes_of(&events).is_empty());
    assert!(
        matches!(error, Some(ModelError::MalformedStream(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn error_chunk_is_an_http_error() {
    let (events, error) = run(Reply::Sse(fixture("openai_error_chunk.sse"))).await;
    assert_eq!(text_of(&events), "Hel");
    assert_eq!(
        error,
        Some(ModelError::Http {
            status: 502,
            message: "Upstream provider went away".to_owned(),
            retry_after: None,
        })
    );
}

#[tokio::test]
async fn connection_refused_is_connect() {
    let provider = OpenAiProvider::new(refused_base_url().await, None, reqwest::Client::new());
    let error = start_error(&provider).await;
    let ModelError::Connect(message) = &error else {
        panic!("expected Connect, got {error:?}");
    };
    // The useful cause is kept, not only reqwest's "error sending request".
    assert!(message.contains("refused"), "{message}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn cancel_mid_stream_stops_promptly() {
    let server = MockServer::start(Reply::Hang(vec![
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n".to_owned(),
    ]))
    .await;
    let cancel = CancellationToken::new();
    let mut stream = provider(&server)
        .stream(simple_request(), cancel.clone())
        .await
        .map_err(|error| error.to_string())
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        first,
        ModelEvent::TextDelta {
            text: "Hel".to_owned()
        }
    );
    let started = Instant::now();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        }
    });
    let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("cancellation was not noticed");
    assert_eq!(next, Some(Err(ModelError::Cancelled)));
    assert!(stream.next().await.is_none());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn cancel_before_headers_returns_cancelled() {
    let server = MockServer::start(Reply::NoHeaders).await;
    let cancel = CancellationToken::new();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
        }
    });
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        provider(&server).stream(simple_request(), cancel),
    )
    .await
    .expect("cancellation was not noticed");
    assert!(matches!(result, Err(ModelError::Cancelled)));
}

#[tokio::test]
async fn idle_stream_times_out() {
    let server = MockServer::start(Reply::Hang(vec![
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n".to_owned(),
    ]))
    .await;
    let stream = provider(&server)
        .with_idle_timeout(Duration::from_millis(300))
        .stream(simple_request(), CancellationToken::new())
        .await
        .map_err(|error| error.to_string())
        .unwrap();
    let (events, error) = collect(stream).await;
    assert_eq!(text_of(&events), "Hel");
    assert_eq!(error, Some(ModelError::Timeout));
}

#[tokio::test]
async fn missing_headers_time_out() {
    let server = MockServer::start(Reply::NoHeaders).await;
    let provider = provider(&server).with_idle_timeout(Duration::from_millis(300));
    assert_eq!(start_error(&provider).await, ModelError::Timeout);
}

#[tokio::test]
async fn fragments_without_index_are_assembled() {
    // Some compatible servers omit `index` and repeat the id in every fragment.
    let body = "\
data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"read_file\",\"arguments\":\"{\\\"path\\\":\"}}]}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"arguments\":\"\\\"x\\\"}\"}}]}}]}\n\n\
data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"b\",\"function\":{\"name\":\"list_dir\",\"arguments\":\"{}\"}}]}}]}\n\n\
data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n\
data: [DONE]\n\n";
    let (events, error) = run(Reply::Sse(body.to_owned())).await;
    assert_eq!(error, None);
    assert_eq!(
        calls_of(&events),
        vec![
            ToolCall {
                id: "a".to_owned(),
                name: "read_file".to_owned(),
                arguments: r#"{"path":"x"}"#.to_owned(),
            },
            ToolCall {
                id: "b".to_owned(),
                name: "list_dir".to_owned(),
                arguments: "{}".to_owned(),
            },
        ]
    );
}

#[tokio::test]
async fn flat_error_body_message_is_used() {
    let server = MockServer::start(Reply::Status {
        status: 404,
        headers: Vec::new(),
        body: r#"{"error":"model 'nope' not found"}"#.to_owned(),
    })
    .await;
    let error = start_error(&provider(&server)).await;
    assert_eq!(
        error,
        ModelError::Http {
            status: 404,
            message: "model 'nope' not found".to_owned(),
            retry_after: None,
        }
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn connection_broken_mid_stream_is_connect() {
    let base_url = broken_body_base_url(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
    )
    .await;
    let provider = OpenAiProvider::new(base_url, None, reqwest::Client::new());
    let stream = provider
        .stream(simple_request(), CancellationToken::new())
        .await
        .map_err(|error| error.to_string())
        .unwrap();
    let (events, error) = collect(stream).await;
    assert_eq!(text_of(&events), "Hel");
    assert!(matches!(error, Some(ModelError::Connect(_))), "{error:?}");
}
