//! A model call's usage when its provider reports none: characters / 4 of the prompt and
//! of the answer, the rule of thumb for English and code. Good enough to count and cap;
//! such calls are marked estimated.

use crate::model::{ChatRequest, Part, Usage};

/// Characters per token assumed.
const CHARS_PER_TOKEN: usize = 4;
/// What an image counts as, in characters.
const IMAGE_CHARS: usize = 6_000;

/// Characters of a request's system prompt, messages and tool descriptions.
pub(super) fn prompt_chars(request: &ChatRequest) -> usize {
    let messages: usize = request.messages.iter().map(|m| parts_chars(&m.parts)).sum();
    let tools: usize = request
        .tools
        .iter()
        .map(|t| t.name.len() + t.description.len())
        .sum();
    request.system.len() + messages + tools
}

/// Characters of a message's parts.
pub(super) fn parts_chars(parts: &[Part]) -> usize {
    parts
        .iter()
        .map(|part| match part {
            Part::Text { text } => text.len(),
            Part::ToolCall(call) => call.name.len() + call.arguments.len(),
            Part::Thinking { thinking, .. } => thinking.len(),
            Part::RedactedThinking { data } => data.len(),
            Part::ToolResult { content, .. } => content.len(),
            // An image costs about as much as 1,500 tokens of text, whatever its bytes.
            Part::Image { .. } => IMAGE_CHARS,
        })
        .sum()
}

/// The estimated usage of a call whose prompt and answer had these many characters.
pub(super) fn usage(prompt_chars: usize, output_chars: usize) -> Usage {
    let tokens = |chars: usize| chars.div_ceil(CHARS_PER_TOKEN).max(1) as u64;
    Usage {
        input_tokens: tokens(prompt_chars),
        output_tokens: tokens(output_chars),
        ..Usage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_characters_make_a_token_and_a_call_costs_at_least_one() {
        let estimate = usage(10, 0);
        assert_eq!(estimate.input_tokens, 3);
        assert_eq!(estimate.output_tokens, 1);
        assert_eq!(estimate.cache_read_tokens, 0);
    }
}
