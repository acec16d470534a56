//! Chat Completions SSE chunks → [`ModelEvent`]s.

use std::collections::{BTreeMap, VecDeque};

use super::types::{ChatCompletionChunk, ChunkError, ToolCallDelta};
use crate::model::{FinishReason, ModelError, ModelEvent, ToolCall, Usage};
use crate::providers::http::{Progress, SseDecoder, finished, mid_stream_error, parse_data};

/// The data line that ends the stream.
const DONE: &str = "[DONE]";

/// Decoder state for one response.
#[derive(Debug, Default)]
pub(crate) struct ChatCompletionDecoder {
    /// Tool calls being assembled, by `index`.
    calls: BTreeMap<u32, PartialCall>,
    /// The first `finish_reason` seen.
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

impl SseDecoder for ChatCompletionDecoder {
    fn on_data(
        &mut self,
        data: &str,
        out: &mut VecDeque<ModelEvent>,
    ) -> Result<Progress, ModelError> {
        if data == DONE {
            self.finish(out)?;
            return Ok(Progress::Done);
        }
        let chunk: ChatCompletionChunk = parse_data(data)?;
        if let Some(error) = chunk.error {
            return Err(chunk_error(error));
        }
        if let Some(usage) = chunk.usage {
            // `prompt_tokens` includes the cached part; `input_tokens` is the rest.
            let cached = usage
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0);
            self.usage = Some(Usage {
                input_tokens: usage.prompt_tokens.unwrap_or(0).saturating_sub(cached),
                output_tokens: usage.completion_tokens.unwrap_or(0),
                cache_read_tokens: cached,
                cache_write_tokens: 0,
                reasoning_tokens: usage
                    .completion_tokens_details
                    .and_then(|d| d.reasoning_tokens)
                    .unwrap_or(0),
            });
        }
        // One completion is asked for, so only the first choice matters.
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(Progress::Continue);
        };
        if let Some(delta) = choice.delta {
            // Reasoning first: a chunk carrying both belongs to the switch from thinking
            // to answering.
            for reasoning in [delta.reasoning_content, delta.reasoning]
                .into_iter()
                .flatten()
            {
                if !reasoning.is_empty() {
                    out.push_back(ModelEvent::ReasoningDelta { text: reasoning });
                }
            }
            if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                out.push_back(ModelEvent::TextDelta { text });
            }
            for fragment in delta.tool_calls.into_iter().flatten() {
                self.add_fragment(fragment);
            }
        }
        if let Some(reason) = choice.finish_reason {
            if self.finish.is_none() {
                self.finish = Some(finish_reason(&reason));
            }
            self.flush_calls(out)?;
        }
        Ok(Progress::Continue)
    }

    fn on_eof(&mut self, out: &mut VecDeque<ModelEvent>) -> Result<(), ModelError> {
        if self.finish.is_none() {
            return Err(ModelError::MalformedStream(
                "the stream ended without a finish_reason or [DONE]".to_owned(),
            ));
        }
        // A finish_reason then the end of the body: complete enough.
        self.finish(out)
    }
}

impl ChatCompletionDecoder {
    fn add_fragment(&mut self, fragment: ToolCallDelta) {
        let index = match fragment.index {
            Some(index) => index,
            // Servers that omit `index`: a fragment with a new id starts a new call, the
            // others continue the latest one.
            None => match self.calls.last_key_value() {
                Some((&last, call))
                    if call.id.is_empty()
                        || fragment.id.as_ref().is_none_or(|id| *id == call.id) =>
                {
                    last
                }
                Some((&last, _)) => last.saturating_add(1),
                None => 0,
            },
        };
        let call = self.calls.entry(index).or_default();
        if let Some(id) = fragment.id.filter(|id| !id.is_empty())
            && call.id.is_empty()
        {
            call.id = id;
        }
        if let Some(function) = fragment.function {
            if let Some(name) = function.name.filter(|name| !name.is_empty())
                && call.name.is_empty()
            {
                call.name = name;
            }
            if let Some(arguments) = function.arguments {
                call.arguments.push_str(&arguments);
            }
        }
    }

    /// Emits the assembled tool calls, in index order.
    fn flush_calls(&mut self, out: &mut VecDeque<ModelEvent>) -> Result<(), ModelError> {
        for (index, call) in std::mem::take(&mut self.calls) {
            if call.name.is_empty() {
                return Err(ModelError::MalformedStream(format!(
                    "tool call {index} has no function name"
                )));
            }
            let id = if call.id.is_empty() {
                format!("call_{index}")
            } else {
                call.id
            };
            out.push_back(ModelEvent::ToolCall(ToolCall {
                id,
                name: call.name,
                arguments: call.arguments,
            }));
        }
        Ok(())
    }

    /// Emits what is pending and the single [`ModelEvent::Finished`].
    fn finish(&mut self, out: &mut VecDeque<ModelEvent>) -> Result<(), ModelError> {
        let had_calls = !self.calls.is_empty();
        self.flush_calls(out)?;
        finished(out, self.finish, had_calls, self.usage);
        Ok(())
    }
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        // `function_call` is the legacy name.
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "length" => FinishReason::Length,
        _ => FinishReason::Other,
    }
}

/// An `error` object inside a chunk: the server failed after answering 200.
fn chunk_error(error: ChunkError) -> ModelError {
    let status = error
        .code
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .filter(|code| (400..=599).contains(code))
        .unwrap_or(500);
    mid_stream_error(status, error.message, error.kind)
}
