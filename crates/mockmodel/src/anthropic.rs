//! Anthropic Messages wire shapes: the `message_start` … `message_stop` SSE events and the
//! non-streaming `message` JSON.

use std::ops::ControlFlow;

use serde_json::{Value, json};

use crate::plan::{Frame, Meta, Piece, Plan};
use crate::rules::{redacted_data, signature};
use crate::script::Finish;

/// The `usage` object: full-rate input, cache reads and writes, output.
fn usage(plan: &Plan, output_tokens: u64) -> Value {
    json!({
        "input_tokens": plan.input_tokens,
        "cache_creation_input_tokens": plan.cache_write_tokens,
        "cache_read_input_tokens": plan.cache_read_tokens,
        "output_tokens": output_tokens,
    })
}

/// The Anthropic name of a finish reason.
pub(crate) fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::ToolCalls => "tool_use",
        Finish::Length => "max_tokens",
    }
}

/// An event whose `event:` line repeats the data's `type`.
fn event(data: Value) -> Frame {
    let name = data
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    Frame::sse(Some(&name), &data.to_string())
}

/// The kind of the content block currently open in a stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
}

/// Builds the block sequence while tracking which block is open.
struct Blocks {
    frames: Vec<Frame>,
    open: Option<Open>,
    next_index: usize,
    /// The text of the open thinking block, which its signature covers.
    thinking: String,
}

impl Blocks {
    fn current(&self) -> usize {
        self.next_index.saturating_sub(1)
    }

    fn close(&mut self) {
        if let Some(open) = self.open.take() {
            let index = self.current();
            if open == Open::Thinking {
                self.frames.push(event(json!({
                    "type": "content_block_delta",
                    "index": index,
                    "delta": { "type": "signature_delta", "signature": signature(&self.thinking) },
                })));
            }
            self.frames.push(event(
                json!({ "type": "content_block_stop", "index": index }),
            ));
        }
    }

    fn start(&mut self, block: Value) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        self.frames.push(event(json!({
            "type": "content_block_start",
            "index": index,
            "content_block": block,
        })));
        index
    }

    fn ensure(&mut self, kind: Open) -> usize {
        if self.open == Some(kind) {
            return self.current();
        }
        self.close();
        self.open = Some(kind);
        match kind {
            Open::Text => self.start(json!({ "type": "text", "text": "" })),
            Open::Thinking => {
                self.thinking.clear();
                self.start(json!({ "type": "thinking", "thinking": "", "signature": "" }))
            }
        }
    }

    /// A `content_block_delta` of the block at `index`.
    fn delta(&mut self, index: usize, delta: Value) {
        self.frames.push(event(json!({
            "type": "content_block_delta",
            "index": index,
            "delta": delta,
        })));
    }

    /// The frames of one piece; `Break` once the stream is cut.
    fn play(&mut self, piece: &Piece) -> ControlFlow<()> {
        match piece {
            Piece::Text(deltas) => {
                let index = self.ensure(Open::Text);
                for d in deltas {
                    self.delta(index, json!({ "type": "text_delta", "text": d }));
                }
            }
            Piece::Reasoning(deltas) => {
                let index = self.ensure(Open::Thinking);
                for d in deltas {
                    self.thinking.push_str(d);
                    self.delta(index, json!({ "type": "thinking_delta", "thinking": d }));
                }
            }
            Piece::Redacted(payload) => {
                self.close();
                let index = self.start(json!({
                    "type": "redacted_thinking", "data": redacted_data(payload),
                }));
                self.frames.push(event(
                    json!({ "type": "content_block_stop", "index": index }),
                ));
            }
            Piece::ToolCall {
                id,
                name,
                fragments,
                ..
            } => {
                self.close();
                let index = self.start(json!({
                    "type": "tool_use", "id": id, "name": name, "input": {},
                }));
                for fragment in fragments {
                    self.delta(
                        index,
                        json!({ "type": "input_json_delta", "partial_json": fragment }),
                    );
                }
                self.frames.push(event(
                    json!({ "type": "content_block_stop", "index": index }),
                ));
            }
            Piece::Delay(ms) => self.frames.push(Frame::Delay(*ms)),
            Piece::Cut => {
                self.frames.push(Frame::Cut);
                return ControlFlow::Break(());
            }
            Piece::Malformed(raw) => self
                .frames
                .push(Frame::sse(Some("content_block_delta"), raw)),
        }
        ControlFlow::Continue(())
    }
}

/// The SSE events of a streamed message, ending in `message_stop` unless cut.
pub(crate) fn stream(meta: &Meta, plan: &Plan) -> Vec<Frame> {
    let start = event(json!({
        "type": "message_start",
        "message": {
            "id": meta.id,
            "type": "message",
            "role": "assistant",
            "model": meta.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage(plan, 1),
        },
    }));
    let mut blocks = Blocks {
        frames: vec![start, event(json!({ "type": "ping" }))],
        open: None,
        next_index: 0,
        thinking: String::new(),
    };
    for piece in &plan.pieces {
        if blocks.play(piece).is_break() {
            return blocks.frames;
        }
    }
    blocks.close();
    let mut frames = blocks.frames;
    frames.push(event(json!({
        "type": "message_delta",
        "delta": { "stop_reason": stop_reason(plan.finish), "stop_sequence": null },
        "usage": usage(plan, plan.output_tokens),
    })));
    frames.push(event(json!({ "type": "message_stop" })));
    frames
}

/// The non-streaming `message` body with the same content blocks.
pub(crate) fn message(meta: &Meta, plan: &Plan) -> Value {
    let mut content: Vec<Value> = Vec::new();
    let mut open: Option<Open> = None;
    for piece in &plan.pieces {
        match piece {
            Piece::Text(d) | Piece::Reasoning(d) => {
                let (kind, field) = match piece {
                    Piece::Text(_) => (Open::Text, "text"),
                    _ => (Open::Thinking, "thinking"),
                };
                let text = d.concat();
                if open == Some(kind)
                    && let Some(Value::String(s)) =
                        content.last_mut().and_then(|b| b.get_mut(field))
                {
                    s.push_str(&text);
                    continue;
                }
                open = Some(kind);
                content.push(match kind {
                    Open::Text => json!({ "type": "text", "text": text }),
                    Open::Thinking => json!({ "type": "thinking", "thinking": text }),
                });
            }
            Piece::Redacted(payload) => {
                open = None;
                content
                    .push(json!({ "type": "redacted_thinking", "data": redacted_data(payload) }));
            }
            Piece::ToolCall {
                id,
                name,
                arguments,
                ..
            } => {
                open = None;
                let input = serde_json::from_str::<Value>(arguments)
                    .unwrap_or_else(|_| Value::String(arguments.clone()));
                content.push(json!({ "type": "tool_use", "id": id, "name": name, "input": input }));
            }
            Piece::Delay(_) | Piece::Cut | Piece::Malformed(_) => {}
        }
    }
    for block in &mut content {
        if let Some(Value::String(text)) = block.get("thinking") {
            let signed = signature(text);
            block["signature"] = Value::String(signed);
        }
    }
    json!({
        "id": meta.id,
        "type": "message",
        "role": "assistant",
        "model": meta.model,
        "content": content,
        "stop_reason": stop_reason(plan.finish),
        "stop_sequence": null,
        "usage": usage(plan, plan.output_tokens),
    })
}

/// The Anthropic error `type` for a status.
pub(crate) fn error_kind(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// `{"type": "error", "error": {"type", "message"}}`.
pub(crate) fn error_body(status: u16, kind: Option<&str>, message: &str) -> Value {
    json!({
        "type": "error",
        "error": { "type": kind.unwrap_or(error_kind(status)), "message": message },
    })
}
