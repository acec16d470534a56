//! The baseline of the run benchmarks: the model requests a run sent, as the mock recorded
//! them, turned back into [`ChatRequest`]s and sent again by the engine's own provider
//! client—raw model round trips, without the orchestration around them.

use anyhow::{Context, bail};
use draftsmith_engine::model::{
    ChatRequest, Message, ModelEvent, Part, Provider, Speaker, ToolCall, ToolDef,
};
use draftsmith_engine::providers::openai::OpenAiProvider;
use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Sends `requests` one after the other, reading each stream to its end.
pub async fn play(provider: &OpenAiProvider, requests: &[ChatRequest]) -> anyhow::Result<()> {
    for request in requests {
        let mut stream = provider
            .stream(request.clone(), CancellationToken::new())
            .await?;
        let mut finished = false;
        while let Some(event) = stream.next().await {
            finished |= matches!(event?, ModelEvent::Finished { .. });
        }
        if !finished {
            bail!("a replayed model stream ended without finishing");
        }
    }
    Ok(())
}

/// The request behind a recorded OpenAI chat-completions `body`.
pub fn chat_request(body: &Value) -> anyhow::Result<ChatRequest> {
    let mut system = String::new();
    let mut messages: Vec<Message> = Vec::new();
    let recorded = body["messages"].as_array().context("no messages")?;
    for message in recorded {
        let text = message["content"].as_str();
        match message["role"].as_str() {
            Some("system") => system = text.unwrap_or_default().to_owned(),
            Some("user") => messages.push(Message {
                speaker: Speaker::User,
                parts: text.map(text_part).into_iter().collect(),
            }),
            Some("assistant") => {
                let mut parts: Vec<Part> = text.map(text_part).into_iter().collect();
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    parts.push(Part::ToolCall(ToolCall {
                        id: string(&call["id"])?,
                        name: string(&call["function"]["name"])?,
                        arguments: string(&call["function"]["arguments"])?,
                    }));
                }
                messages.push(Message {
                    speaker: Speaker::Assistant,
                    parts,
                });
            }
            Some("tool") => {
                // Tool results travel as parts of a user message; the provider sends each
                // as its own `role: "tool"` message again.
                let part = Part::ToolResult {
                    call_id: string(&message["tool_call_id"])?,
                    content: text.unwrap_or_default().to_owned(),
                    is_error: false,
                };
                match messages.last_mut() {
                    Some(last) if last.speaker == Speaker::User => last.parts.push(part),
                    _ => messages.push(Message {
                        speaker: Speaker::User,
                        parts: vec![part],
                    }),
                }
            }
            other => bail!("unexpected message role {other:?}"),
        }
    }
    let tools = body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tool| {
            Ok(ToolDef {
                name: string(&tool["function"]["name"])?,
                description: string(&tool["function"]["description"])?,
                input_schema: tool["function"]["parameters"].clone(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(ChatRequest {
        model: string(&body["model"])?,
        system,
        messages,
        tools,
        max_tokens: body["max_tokens"]
            .as_u64()
            .context("no max_tokens")?
            .try_into()?,
        ..ChatRequest::default()
    })
}

fn text_part(text: &str) -> Part {
    Part::Text {
        text: text.to_owned(),
    }
}

fn string(value: &Value) -> anyhow::Result<String> {
    value
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("expected a string, found {value}"))
}
