//! Keeping what is sent inside the model's context window (a run's conversation, a chat's
//! history). Every request is measured
//! before it is sent, with a conservative byte estimate rather than a tokenizer (no tokenizer
//! exists for every family, and one byte estimate errs on the safe side for all of them; see
//! `docs/decisions.md`). A request over the window's input budget is made to fit by, in order:
//! eliding older tool outputs (the latest round stays whole, a marker says what was dropped),
//! then replacing the earlier part of the conversation by a summary (`compact`).

use crate::model::{ChatRequest, Message, Part, Speaker, ToolDef};

/// Bytes counted as one token. Real tokenizers give about 4 bytes a token for English prose
/// and 3 for code and JSON; 3 keeps the estimate at or above the true count.
pub const BYTES_PER_TOKEN: usize = 3;
/// Tokens counted for the wire framing of each message (roles, separators).
const MESSAGE_FRAMING_TOKENS: usize = 8;
/// Tokens counted for the request's own framing.
const REQUEST_FRAMING_TOKENS: usize = 64;

/// Estimated tokens of `bytes` bytes of text.
pub fn tokens_of(bytes: usize) -> usize {
    bytes.div_ceil(BYTES_PER_TOKEN)
}

/// Tokens counted for an image, whatever its size: providers scale images down to about a
/// megapixel, which costs about 1,600 tokens (Anthropic) or up to 1,105 (OpenAI, high detail).
pub const IMAGE_TOKENS: usize = 1_600;

/// Estimated tokens of one message as it travels (its JSON form, which is at least as long as
/// every provider's wire form of it; an image counts [`IMAGE_TOKENS`], not its bytes).
pub fn message_tokens(message: &Message) -> usize {
    let bytes = serde_json::to_vec(message).map(|v| v.len()).unwrap_or(0);
    let (images, image_bytes) = message
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Image { data, .. } => Some(data.len()),
            _ => None,
        })
        .fold((0, 0), |(n, b), len| (n + 1, b + len));
    tokens_of(bytes - image_bytes) + images * IMAGE_TOKENS + MESSAGE_FRAMING_TOKENS
}

/// Estimated tokens of a whole conversation.
pub fn messages_tokens(messages: &[Message]) -> usize {
    messages.iter().map(message_tokens).sum()
}

/// What a run's requests may hold: the window minus the answer's reserve, and the part of it
/// the system prompt and tool definitions always take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The model's context window.
    pub window: usize,
    /// Input tokens a request may hold: the window minus the answer's `max_tokens`.
    pub input: usize,
    /// Tokens of the system prompt, the tools and the request's framing.
    pub fixed: usize,
}

impl Budget {
    /// The budget of requests shaped like `request` (its system prompt, tools and
    /// `max_tokens`) for a model with `window` tokens.
    pub fn of(window: u32, request: &ChatRequest) -> Budget {
        Budget {
            window: window as usize,
            input: (window as usize).saturating_sub(request.max_tokens as usize),
            fixed: fixed_tokens(&request.system, &request.tools),
        }
    }

    /// Tokens left for the conversation itself; `None` when the fixed part alone overflows.
    pub fn conversation(&self) -> Option<usize> {
        self.input.checked_sub(self.fixed).filter(|left| *left > 0)
    }

    /// Whether `messages` fit.
    pub fn fits(&self, messages: &[Message]) -> bool {
        self.conversation()
            .is_some_and(|left| messages_tokens(messages) <= left)
    }

    /// Bytes one tool output of a round of `outputs` may keep: three fifths of the
    /// conversation's room, shared, so a single huge output leaves space for a summary (a
    /// fifth) and the request (a tenth) after a compaction.
    pub fn output_bytes(&self, outputs: usize) -> usize {
        let room = self.conversation().unwrap_or(0) * 3 / 5 / outputs.max(1);
        room.saturating_sub(MESSAGE_FRAMING_TOKENS) * BYTES_PER_TOKEN
    }
}

/// Tokens of a request's system prompt, tools and framing.
pub fn fixed_tokens(system: &str, tools: &[ToolDef]) -> usize {
    let tool_bytes = serde_json::to_vec(tools).map(|v| v.len()).unwrap_or(0);
    tokens_of(system.len() + tool_bytes) + REQUEST_FRAMING_TOKENS
}

/// Shortens `text` to about `max_bytes`, keeping its beginning and end around a marker that
/// says how much was dropped and why.
pub fn elide_middle(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let keep = max_bytes.saturating_sub(160) / 2;
    let head_end = floor_char(text, keep);
    let tail_start = ceil_char(text, text.len() - keep);
    format!(
        "{}\n[… {} bytes elided here to keep the conversation inside the model's context window …]\n{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
}

fn floor_char(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_char(text: &str, mut at: usize) -> usize {
    while at < text.len() && !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// Caps every tool output of the newest round at [`Budget::output_bytes`].
pub fn cap_outputs(results: &mut [Part], budget: &Budget) {
    let max = budget.output_bytes(results.len());
    for part in results {
        if let Part::ToolResult { content, .. } = part
            && content.len() > max
        {
            *content = elide_middle(content, max);
        }
    }
}

/// The marker that replaces an elided tool output.
fn elided_marker(bytes: usize) -> String {
    format!(
        "[tool output elided to keep the conversation inside the model's context window: \
         {bytes} bytes dropped; call the tool again if you need it]"
    )
}

/// Replaces the oldest tool output not yet elided, outside the newest round of results, by a
/// marker; `false` when there is none left.
pub fn elide_oldest_output(messages: &mut [Message]) -> bool {
    let newest_round = messages
        .iter()
        .rposition(|m| m.parts.iter().any(|p| matches!(p, Part::ToolResult { .. })));
    let Some(newest_round) = newest_round else {
        return false;
    };
    for message in &mut messages[..newest_round] {
        for part in &mut message.parts {
            if let Part::ToolResult { content, .. } = part
                && !content.starts_with("[tool output elided")
            {
                *content = elided_marker(content.len());
                return true;
            }
        }
    }
    false
}

/// Where a compaction cuts `messages`: the oldest assistant message from which the rest fits
/// in half the conversation's room (at least the newest assistant turn is kept). `None` when
/// nothing before it is worth summarising (nothing, or only an earlier summary).
pub fn compaction_cut(messages: &[Message], budget: &Budget, summarised: bool) -> Option<usize> {
    let half = budget.conversation()? / 2;
    let mut cut = None;
    let mut kept = 0;
    for (index, message) in messages.iter().enumerate().rev() {
        kept += message_tokens(message);
        if message.speaker != Speaker::Assistant {
            continue;
        }
        if cut.is_some() && kept > half {
            break;
        }
        cut = Some(index);
    }
    let floor = if summarised { 1 } else { 0 };
    cut.filter(|c| *c > floor)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::ToolCall;

    fn text(speaker: Speaker, text: &str) -> Message {
        Message {
            speaker,
            parts: vec![Part::Text { text: text.into() }],
        }
    }

    fn round(i: usize, output: &str) -> [Message; 2] {
        let call = ToolCall {
            id: format!("c{i}"),
            name: "read".into(),
            arguments: "{}".into(),
        };
        [
            Message {
                speaker: Speaker::Assistant,
                parts: vec![Part::ToolCall(call)],
            },
            Message {
                speaker: Speaker::User,
                parts: vec![Part::ToolResult {
                    call_id: format!("c{i}"),
                    content: output.into(),
                    is_error: false,
                }],
            },
        ]
    }

    fn budget(input: usize) -> Budget {
        Budget {
            window: input + 100,
            input,
            fixed: 100,
        }
    }

    #[test]
    fn elides_older_outputs_oldest_first_and_keeps_the_newest_round() {
        let mut messages = vec![text(Speaker::User, "go")];
        for i in 0..3 {
            messages.extend(round(i, &"x".repeat(1_000)));
        }
        assert!(elide_oldest_output(&mut messages));
        assert!(elide_oldest_output(&mut messages));
        assert!(!elide_oldest_output(&mut messages));
        let contents: Vec<&str> = messages
            .iter()
            .flat_map(|m| &m.parts)
            .filter_map(|p| match p {
                Part::ToolResult { content, .. } => Some(content.as_str()),
                _ => None,
            })
            .collect();
        assert!(contents[0].contains("1000 bytes dropped"));
        assert!(contents[1].starts_with("[tool output elided"));
        assert_eq!(contents[2].len(), 1_000);
    }

    #[test]
    fn a_huge_output_keeps_both_ends_within_its_share() {
        let huge = format!("start{}end", "é".repeat(50_000));
        let mut parts = vec![Part::ToolResult {
            call_id: "c".into(),
            content: huge,
            is_error: false,
        }];
        let b = budget(2_100);
        cap_outputs(&mut parts, &b);
        let Part::ToolResult { content, .. } = &parts[0] else {
            unreachable!()
        };
        assert!(
            content.len() <= b.output_bytes(1) + 200,
            "{}",
            content.len()
        );
        assert!(content.starts_with("start") && content.ends_with("end"));
        assert!(content.contains("bytes elided"));
    }

    #[test]
    fn the_cut_keeps_the_newest_turns_within_half_the_room() {
        let mut messages = vec![text(Speaker::User, "go")];
        for i in 0..10 {
            messages.extend(round(i, &"y".repeat(300)));
        }
        let b = budget(1_000);
        let cut = compaction_cut(&messages, &b, false).unwrap();
        assert_eq!(messages[cut].speaker, Speaker::Assistant);
        assert!(messages_tokens(&messages[cut..]) <= b.conversation().unwrap() / 2);
        assert!(cut > 1);
        // Only a summary before the newest turn: nothing to compact.
        let short = vec![
            messages[0].clone(),
            messages[19].clone(),
            messages[20].clone(),
        ];
        assert_eq!(compaction_cut(&short, &b, true), None);
        assert_eq!(compaction_cut(&short, &b, false), Some(1));
    }

    #[test]
    fn the_fixed_part_alone_can_overflow() {
        let b = Budget {
            window: 1_000,
            input: 500,
            fixed: 600,
        };
        assert_eq!(b.conversation(), None);
        assert!(!b.fits(&[]));
    }
}
