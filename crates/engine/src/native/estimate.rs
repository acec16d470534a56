//! A model call's usage when its provider reports none, counted by the same estimate that
//! keeps requests inside the window (`crate::context`): it errs on the high side, so a
//! budget is never overrun by an uncounted call. Such calls are marked estimated.

use crate::context::{fixed_tokens, messages_tokens, tokens_of};
use crate::model::{ChatRequest, Part, Usage};

/// Estimated input tokens of `request`.
pub(super) fn prompt_tokens(request: &ChatRequest) -> usize {
    fixed_tokens(&request.system, &request.tools) + messages_tokens(&request.messages)
}

/// Bytes of the text a model generated in these parts (thinking included).
pub(super) fn parts_bytes(parts: &[Part]) -> usize {
    parts
        .iter()
        .map(|part| match part {
            Part::Text { text } => text.len(),
            Part::ToolCall(call) => call.name.len() + call.arguments.len(),
            Part::Thinking { thinking, .. } => thinking.len(),
            Part::RedactedThinking { data } => data.len(),
            Part::ToolResult { content, .. } => content.len(),
            Part::Image { .. } => 0,
        })
        .sum()
}

/// The estimated usage of a call with `prompt_tokens` in and `output_bytes` generated.
pub(super) fn usage(prompt_tokens: usize, output_bytes: usize) -> Usage {
    Usage {
        input_tokens: prompt_tokens.max(1) as u64,
        output_tokens: tokens_of(output_bytes).max(1) as u64,
        ..Usage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimated_call_costs_at_least_one_token_each_way() {
        let estimate = usage(0, 0);
        assert_eq!((estimate.input_tokens, estimate.output_tokens), (1, 1));
        let estimate = usage(40, 10);
        assert_eq!(estimate.output_tokens, tokens_of(10) as u64);
        assert_eq!(estimate.cache_read_tokens, 0);
    }
}
