//! OpenAI Chat Completions wire shapes: `chat.completion.chunk` SSE and `chat.completion` JSON.

use serde_json::{Value, json};

use crate::plan::{Frame, Meta, Piece, Plan};
use crate::script::Finish;

/// The OpenAI name of a finish reason.
pub(crate) fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::ToolCalls => "tool_calls",
        Finish::Length => "length",
    }
}

/// The `usage` object; `prompt_tokens` includes the cached part.
fn usage(plan: &Plan) -> Value {
    let prompt = plan.input_tokens + plan.cache_read_tokens;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": plan.output_tokens,
        "total_tokens": prompt + plan.output_tokens,
        "prompt_tokens_details": { "cached_tokens": plan.cache_read_tokens },
    })
}

/// One `chat.completion.chunk` with a single choice.
fn chunk(meta: &Meta, delta: Value, finish: Option<&str>) -> Frame {
    let mut body = json!({
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish,
        }],
    });
    if meta.include_usage {
        body["usage"] = Value::Null;
    }
    Frame::sse(None, &body.to_string())
}

/// The SSE events of a streamed completion, ending in `data: [DONE]` unless cut.
pub(crate) fn stream(meta: &Meta, plan: &Plan) -> Vec<Frame> {
    let mut frames = vec![chunk(
        meta,
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    for piece in &plan.pieces {
        match piece {
            Piece::Text(deltas) => {
                for d in deltas {
                    frames.push(chunk(meta, json!({ "content": d }), None));
                }
            }
            Piece::Reasoning(deltas) => {
                for d in deltas {
                    frames.push(chunk(meta, json!({ "reasoning_content": d }), None));
                }
            }
            Piece::ToolCall {
                index,
                id,
                name,
                fragments,
                ..
            } => {
                for (k, fragment) in fragments.iter().enumerate() {
                    let call = if k == 0 {
                        json!({
                            "index": index,
                            "id": id,
                            "type": "function",
                            "function": { "name": name, "arguments": fragment },
                        })
                    } else {
                        json!({ "index": index, "function": { "arguments": fragment } })
                    };
                    frames.push(chunk(meta, json!({ "tool_calls": [call] }), None));
                }
            }
            Piece::Redacted(_) => {}
            Piece::Delay(ms) => frames.push(Frame::Delay(*ms)),
            Piece::Cut => {
                frames.push(Frame::Cut);
                return frames;
            }
            Piece::Malformed(raw) => frames.push(Frame::sse(None, raw)),
        }
    }
    frames.push(chunk(meta, json!({}), Some(finish_reason(plan.finish))));
    if meta.include_usage && plan.report_usage {
        let body = json!({
            "id": meta.id,
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "system_fingerprint": null,
            "choices": [],
            "usage": usage(plan),
        });
        frames.push(Frame::sse(None, &body.to_string()));
    }
    frames.push(Frame::sse(None, "[DONE]"));
    frames
}

/// The non-streaming `chat.completion` body with the same content.
pub(crate) fn completion(meta: &Meta, plan: &Plan) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for piece in &plan.pieces {
        match piece {
            Piece::Text(d) => text.push_str(&d.concat()),
            Piece::Reasoning(d) => reasoning.push_str(&d.concat()),
            Piece::ToolCall {
                id,
                name,
                arguments,
                ..
            } => calls.push(json!({
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": arguments },
            })),
            Piece::Redacted(_) | Piece::Delay(_) | Piece::Cut | Piece::Malformed(_) => {}
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) },
        "refusal": null,
    });
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(plan.finish),
        }],
        "usage": if plan.report_usage { usage(plan) } else { Value::Null },
    })
}

/// The OpenAI error `type` and `code` for a status.
pub(crate) fn error_kind(status: u16) -> (&'static str, Option<&'static str>) {
    match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("permission_error", None),
        404 => ("invalid_request_error", Some("not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    }
}

/// `{"error": {"message", "type", "param", "code"}}`.
pub(crate) fn error_body(status: u16, kind: Option<&str>, message: &str) -> Value {
    let (default_kind, code) = error_kind(status);
    json!({
        "error": {
            "message": message,
            "type": kind.unwrap_or(default_kind),
            "param": null,
            "code": code,
        }
    })
}
