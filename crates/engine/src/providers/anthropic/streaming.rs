//! Messages API SSE events → [`ModelEvent`]s.

use std::collections::{BTreeMap, VecDeque};

use super::types::{BlockDelta, StartBlock, StreamError, StreamEvent, StreamUsage};
use crate::model::{FinishReason, ModelError, ModelEvent, ToolCall, Usage};
use crate::providers::http::{Progress, SseDecoder, finished, mid_stream_error, parse_data};

/// Decoder state for one response.
#[derive(Debug, Default)]
pub(crate) struct MessagesDecoder {
    /// Open `tool_use` blocks, by content block index.
    tool_uses: BTreeMap<u32, PartialToolUse>,
    /// Open thinking blocks (text, signature), by content block index.
    thinking: BTreeMap<u32, (String, String)>,
    stop_reason: Option<FinishReason>,
    /// Whether any tool call was emitted.
    called: bool,
    usage: Option<Usage>,
}

#[derive(Debug, Default)]
struct PartialToolUse {
    id: String,
    name: String,
    /// Concatenated `partial_json`.
    arguments: String,
    /// The `input` of `content_block_start`, used when no delta follows.
    initial_input: Option<serde_json::Value>,
    got_delta: bool,
}

impl PartialToolUse {
    fn into_call(self) -> ToolCall {
        let arguments = if self.got_delta {
            self.arguments
        } else {
            // No deltas: the whole input came with the start (or there is none).
            self.initial_input
                .filter(|input| input.as_object().is_some_and(|object| !object.is_empty()))
                .map_or_else(|| "{}".to_owned(), |input| input.to_string())
        };
        ToolCall {
            id: self.id,
            name: self.name,
            arguments,
        }
    }
}

impl MessagesDecoder {
    fn block_start(&mut self, index: u32, block: StartBlock, out: &mut VecDeque<ModelEvent>) {
        match block {
            StartBlock::Text { text } => push_text(out, text),
            StartBlock::Thinking {
                thinking,
                signature,
            } => {
                push_reasoning(out, thinking.clone());
                self.thinking.insert(index, (thinking, signature));
            }
            StartBlock::RedactedThinking { data } => {
                out.push_back(ModelEvent::RedactedThinking { data });
            }
            StartBlock::ToolUse { id, name, input } => {
                let tool_use = PartialToolUse {
                    id,
                    name,
                    initial_input: input,
                    ..PartialToolUse::default()
                };
                self.tool_uses.insert(index, tool_use);
            }
            StartBlock::Other => {}
        }
    }

    fn block_delta(
        &mut self,
        index: u32,
        delta: BlockDelta,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<(), ModelError> {
        match delta {
            BlockDelta::TextDelta { text } => push_text(out, text),
            BlockDelta::ThinkingDelta { thinking } => {
                if let Some((text, _)) = self.thinking.get_mut(&index) {
                    text.push_str(&thinking);
                }
                push_reasoning(out, thinking);
            }
            BlockDelta::SignatureDelta { signature } => {
                let Some((_, kept)) = self.thinking.get_mut(&index) else {
                    return Err(ModelError::MalformedStream(format!(
                        "signature_delta for content block {index}, which is not an open thinking block"
                    )));
                };
                kept.push_str(&signature);
            }
            BlockDelta::InputJsonDelta { partial_json } => {
                let Some(tool_use) = self.tool_uses.get_mut(&index) else {
                    return Err(ModelError::MalformedStream(format!(
                        "input_json_delta for content block {index}, which is not an open tool_use block"
                    )));
                };
                tool_use.arguments.push_str(&partial_json);
                tool_use.got_delta = true;
            }
            BlockDelta::Other => {}
        }
        Ok(())
    }

    /// Queues the thinking and tool call of block `index` as they stand.
    fn block_stop(&mut self, index: u32, out: &mut VecDeque<ModelEvent>) {
        if let Some((thinking, signature)) = self.thinking.remove(&index) {
            out.push_back(ModelEvent::Thinking {
                thinking,
                signature,
            });
        }
        if let Some(tool_use) = self.tool_uses.remove(&index) {
            self.called = true;
            out.push_back(ModelEvent::ToolCall(tool_use.into_call()));
        }
    }

    /// The end of the message: blocks never stopped are complete as far as the server is
    /// concerned, then the turn finishes.
    fn message_stop(&mut self, out: &mut VecDeque<ModelEvent>) {
        let open: Vec<u32> = self
            .thinking
            .keys()
            .chain(self.tool_uses.keys())
            .copied()
            .collect();
        for index in open {
            self.block_stop(index, out);
        }
        finished(out, self.stop_reason, self.called, self.usage);
    }
}

impl SseDecoder for MessagesDecoder {
    fn on_data(
        &mut self,
        data: &str,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<Progress, ModelError> {
        match parse_data::<StreamEvent>(data)? {
            StreamEvent::MessageStart { message } => {
                if let Some(usage) = message.usage {
                    self.add_usage(&usage);
                }
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, content_block, out),
            StreamEvent::ContentBlockDelta { index, delta } => {
                self.block_delta(index, delta, out)?;
            }
            StreamEvent::ContentBlockStop { index } => self.block_stop(index, out),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.stop_reason = Some(stop_reason(&reason));
                }
                if let Some(usage) = usage {
                    self.add_usage(&usage);
                }
            }
            StreamEvent::MessageStop => {
                self.message_stop(out);
                return Ok(Progress::Done);
            }
            StreamEvent::Ping | StreamEvent::Unknown => {}
            StreamEvent::Error { error } => return Err(stream_error(error)),
        }
        Ok(Progress::Continue)
    }

    fn on_eof(&mut self, _out: &mut VecDeque<ModelEvent>) -> Result<(), ModelError> {
        Err(ModelError::MalformedStream(
            "the stream ended before message_stop".to_owned(),
        ))
    }
}

impl MessagesDecoder {
    /// Folds in a usage report: `message_start` carries the input side, `message_delta`
    /// cumulative counts, so each count present replaces the earlier one. `input_tokens`
    /// is the uncached input, cache reads and writes are counted apart.
    fn add_usage(&mut self, report: &StreamUsage) {
        let usage = self.usage.get_or_insert_with(Usage::default);
        let fields = [
            (report.input_tokens, &mut usage.input_tokens),
            (report.cache_read_input_tokens, &mut usage.cache_read_tokens),
            (
                report.cache_creation_input_tokens,
                &mut usage.cache_write_tokens,
            ),
            (report.output_tokens, &mut usage.output_tokens),
        ];
        for (reported, kept) in fields {
            if let Some(value) = reported {
                *kept = value;
            }
        }
    }
}

fn push_text(out: &mut VecDeque<ModelEvent>, text: String) {
    if !text.is_empty() {
        out.push_back(ModelEvent::TextDelta { text });
    }
}

fn push_reasoning(out: &mut VecDeque<ModelEvent>, text: String) {
    if !text.is_empty() {
        out.push_back(ModelEvent::ReasoningDelta { text });
    }
}

fn stop_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "tool_use" => FinishReason::ToolCalls,
        "max_tokens" => FinishReason::Length,
        _ => FinishReason::Other,
    }
}

/// An `error` event: the server failed after answering 200.
fn stream_error(error: StreamError) -> ModelError {
    let status = if error.kind.as_deref() == Some("overloaded_error") {
        529
    } else {
        500
    };
    mid_stream_error(status, error.message, error.kind)
}
