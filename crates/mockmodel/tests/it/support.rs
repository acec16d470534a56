//! Helpers: start a server from JSON, post requests, read SSE bodies.

use draftsmith_mockmodel::{MockModel, Script};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub event: Option<String>,
    pub data: String,
}

impl Sse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("bad json {:?}: {e}", self.data))
    }
}

/// A response body read to its end (or to the connection's failure).
#[derive(Debug)]
pub struct Streamed {
    pub status: u16,
    pub headers: HeaderMap,
    pub events: Vec<Sse>,
    pub raw: String,
    /// False when the connection broke before the body ended.
    pub clean_end: bool,
}

impl Streamed {
    /// Data of every event, parsed as JSON, skipping `[DONE]`.
    pub fn chunks(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| e.data != "[DONE]")
            .map(Sse::json)
            .collect()
    }
}

pub async fn start(script: &str) -> MockModel {
    MockModel::start(Script::from_json(script).unwrap())
        .await
        .unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

pub async fn post_stream(url: &str, body: &Value) -> Streamed {
    let mut response = client().post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut bytes = Vec::new();
    let clean_end = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    let raw = String::from_utf8(bytes).unwrap();
    Streamed {
        status,
        headers,
        events: parse_sse(&raw),
        raw,
        clean_end,
    }
}

pub async fn post_json(url: &str, body: &Value) -> (u16, HeaderMap, Value) {
    let response = client().post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad json {text:?}: {e}"));
    (status, headers, value)
}

/// A minimal SSE parser (`event:` and `data:` lines, blank-line separated).
pub fn parse_sse(text: &str) -> Vec<Sse> {
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                event = Some(v.trim_start().to_owned());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if event.is_some() || !data.is_empty() {
            events.push(Sse {
                event,
                data: data.join("\n"),
            });
        }
    }
    events
}

pub fn openai_url(model: &MockModel) -> String {
    format!("{}/chat/completions", model.base_url())
}

pub fn anthropic_url(model: &MockModel) -> String {
    format!("{}/messages", model.base_url())
}

/// An OpenAI request with a user message and `assistants` earlier assistant turns.
pub fn openai_request(system: &str, user: &str, assistants: usize, stream: bool) -> Value {
    let mut messages = vec![json!({"role": "system", "content": system})];
    for i in 0..assistants {
        messages.push(json!({"role": "user", "content": format!("earlier {i}")}));
        messages.push(json!({"role": "assistant", "content": format!("answer {i}")}));
    }
    messages.push(json!({"role": "user", "content": user}));
    json!({
        "model": "coder",
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": messages,
    })
}

/// An Anthropic request with a user message and `assistants` earlier assistant turns.
pub fn anthropic_request(system: &str, user: &str, assistants: usize, stream: bool) -> Value {
    let mut messages = Vec::new();
    for i in 0..assistants {
        messages.push(json!({"role": "user", "content": format!("earlier {i}")}));
        messages.push(json!({"role": "assistant", "content": [{"type": "text", "text": format!("answer {i}")}]}));
    }
    messages.push(json!({"role": "user", "content": [{"type": "text", "text": user}]}));
    json!({
        "model": "claude-mock",
        "max_tokens": 1024,
        "stream": stream,
        "system": system,
        "messages": messages,
    })
}

/// Concatenated `delta.content` of OpenAI chunks.
pub fn openai_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            c.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect()
}

/// The script used by the shape tests of both dialects.
pub const SHAPE_SCRIPT: &str = r#"{
  "scenarios": [{
    "name": "shape",
    "turns": [{
      "steps": [
        {"reasoning": "Let me think about it.", "chunk": 5},
        {"text": "I will write two files.", "chunk": 4},
        {"tool_call": {"id": "call_a", "name": "write",
                       "arguments": {"path": "a.txt", "content": "hello \"world\"\n"}, "split": 3}},
        {"tool_call": {"name": "read", "arguments": {"path": "b.txt"}}}
      ],
      "usage": {"input_tokens": 120, "output_tokens": 34}
    }, {
      "steps": [{"text": "All done."}]
    }]
  }]
}"#;

/// The exact arguments text of the first tool call in [`SHAPE_SCRIPT`].
pub fn shape_args() -> String {
    json!({"path": "a.txt", "content": "hello \"world\"\n"}).to_string()
}
