//! A tiny model server: answers every request with a configured [`Reply`] and records
//! the requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use draftsmith_engine::model::{
    ChatRequest, Message, ModelError, ModelEvent, ModelStream, Part, Speaker, ToolCall, ToolDef,
};
use futures::StreamExt;

/// What the server answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with this SSE body.
    Sse(String),
    /// Any status, headers and body.
    Status {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// 200, these chunks, then nothing more while the connection stays open.
    Hang(Vec<String>),
    /// Never answers.
    NoHeaders,
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

#[derive(Clone)]
struct ServerState {
    reply: Reply,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

/// A running server; it stops with the test's runtime.
pub struct MockServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl MockServer {
    pub async fn start(reply: Reply) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = ServerState {
            reply,
            requests: requests.clone(),
        };
        let app = Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, requests }
    }

    /// The `base_url` to give a provider (ending in `/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The only request received.
    pub fn single_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one request");
        requests.into_iter().next().unwrap()
    }
}

async fn handle(
    State(state): State<ServerState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    state.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    });
    match state.reply {
        Reply::Sse(body) => sse_response(Body::from(body)),
        Reply::Status {
            status,
            headers,
            body,
        } => {
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        Reply::Hang(chunks) => {
            let chunks = futures::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>))
                .chain(futures::stream::pending());
            sse_response(Body::from_stream(chunks))
        }
        Reply::NoHeaders => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

fn sse_response(body: Body) -> Response {
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A fixture from `tests/fixtures/`.
pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// An address nothing listens on.
pub async fn refused_base_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1")
}

/// Everything a stream yields: its events, and the error it ended with, if any. Fails the
/// test if the stream goes on after an error or takes longer than a few seconds.
pub async fn collect(mut stream: ModelStream) -> (Vec<ModelEvent>, Option<ModelError>) {
    tokio::time::timeout(Duration::from_secs(10), async move {
        let mut events = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => events.push(event),
                Err(error) => {
                    assert!(
                        stream.next().await.is_none(),
                        "the stream went on after {error}"
                    );
                    return (events, Some(error));
                }
            }
        }
        (events, None)
    })
    .await
    .expect("the stream did not end in time")
}

/// The concatenated text of the `TextDelta`s.
pub fn text_of(events: &[ModelEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            ModelEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// The concatenated text of the `ReasoningDelta`s.
pub fn reasoning_of(events: &[ModelEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            ModelEvent::ReasoningDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// The tool calls, in order.
pub fn calls_of(events: &[ModelEvent]) -> Vec<ToolCall> {
    events
        .iter()
        .filter_map(|event| match event {
            ModelEvent::ToolCall(call) => Some(call.clone()),
            _ => None,
        })
        .collect()
}

/// The `Finished` events.
pub fn finishes_of(events: &[ModelEvent]) -> Vec<ModelEvent> {
    events
        .iter()
        .filter(|event| matches!(event, ModelEvent::Finished { .. }))
        .cloned()
        .collect()
}

/// A minimal request.
pub fn simple_request() -> ChatRequest {
    ChatRequest {
        model: "test-model".to_owned(),
        system: "Be brief.".to_owned(),
        messages: vec![Message {
            speaker: Speaker::User,
            parts: vec![Part::Text {
                text: "Hi".to_owned(),
            }],
        }],
        tools: Vec::new(),
        max_tokens: 256,
        ..ChatRequest::default()
    }
}

/// A request with every kind of part: text, two tool calls (one with arguments that are
/// not JSON), their results (one failed) followed by more user text, and two tools.
pub fn full_request() -> ChatRequest {
    ChatRequest {
        model: "test-model".to_owned(),
        system: "You are a coding agent.".to_owned(),
        messages: vec![
            Message {
                speaker: Speaker::User,
                parts: vec![Part::Text {
                    text: "Read the README and list src.".to_owned(),
                }],
            },
            Message {
                speaker: Speaker::Assistant,
                parts: vec![
                    Part::Text {
                        text: "Reading both.".to_owned(),
                    },
                    Part::ToolCall(ToolCall {
                        id: "call_1".to_owned(),
                        name: "read_file".to_owned(),
                        arguments: r#"{"path":"README.md"}"#.to_owned(),
                    }),
                    Part::ToolCall(ToolCall {
                        id: "call_2".to_owned(),
                        name: "list_dir".to_owned(),
                        arguments: r#"{"path": "src""#.to_owned(),
                    }),
                ],
            },
            Message {
                speaker: Speaker::User,
                parts: vec![
                    Part::ToolResult {
                        call_id: "call_1".to_owned(),
                        content: r#"{"content":"hello"}"#.to_owned(),
                        is_error: false,
                    },
                    Part::ToolResult {
                        call_id: "call_2".to_owned(),
                        content: r#"{"error":"invalid arguments"}"#.to_owned(),
                        is_error: true,
                    },
                ],
            },
            Message {
                speaker: Speaker::User,
                parts: vec![Part::Text {
                    text: "Also, be quick.".to_owned(),
                }],
            },
        ],
        tools: vec![
            ToolDef {
                name: "read_file".to_owned(),
                description: "Reads a file.".to_owned(),
                input_schema: serde_json::json!({
                    "type": "object",
                    "properties": {"path": {"type": "string"}},
                    "required": ["path"],
                }),
            },
            ToolDef {
                name: "list_dir".to_owned(),
                description: "Lists a directory.".to_owned(),
                input_schema: serde_json::json!({
                    "type": "object",
                    "properties": {"path": {"type": "string"}},
                }),
            },
        ],
        max_tokens: 4096,
        ..ChatRequest::default()
    }
}

/// A raw server that answers 200 with a chunked SSE body, sends `chunk`, then drops the
/// connection without finishing the body. Returns its `base_url`.
pub async fn broken_body_base_url(chunk: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        // Read the request head and body: enough to get past them before answering.
        let mut request = Vec::new();
        let mut buffer = [0_u8; 4096];
        while !request.windows(4).any(|window| window == b"\r\n\r\n") {
            let read = socket.read(&mut buffer).await.unwrap();
            if read == 0 {
                return;
            }
            request.extend_from_slice(&buffer[..read]);
        }
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let body = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(body.as_bytes()).await.unwrap();
        socket.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(socket);
    });
    format!("http://{addr}/v1")
}
