//! A reply turned into dialect-neutral pieces: chunked text, split tool arguments, ids, usage.

use bytes::Bytes;

use crate::script::{Finish, Reply, Step, Usage};

/// One unit of output, before a dialect gives it a wire shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// Assistant text deltas.
    Text(Vec<String>),
    /// Reasoning deltas.
    Reasoning(Vec<String>),
    /// An encrypted thinking block's payload.
    Redacted(String),
    /// A tool call with its arguments cut into fragments.
    ToolCall {
        index: usize,
        id: String,
        name: String,
        arguments: String,
        fragments: Vec<String>,
    },
    /// Pause the stream.
    Delay(u64),
    /// Drop the connection.
    Cut,
    /// A data line that is not JSON.
    Malformed(String),
}

/// A reply ready to be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub pieces: Vec<Piece>,
    pub finish: Finish,
    /// Input at the full rate.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Input read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input written to the prompt cache.
    pub cache_write_tokens: u64,
    /// Whether the reply reports its usage (OpenAI; Anthropic always does).
    pub report_usage: bool,
}

impl Plan {
    /// Builds the plan; `new_id` makes ids for tool calls the script leaves unnamed.
    pub fn new(reply: &Reply, input_estimate: u64, mut new_id: impl FnMut() -> String) -> Plan {
        let mut pieces = Vec::with_capacity(reply.steps.len());
        let mut tool_index = 0;
        let mut output_chars = 0usize;
        for step in &reply.steps {
            match step {
                Step::Text { text, chunk } => {
                    output_chars += text.chars().count();
                    if !text.is_empty() {
                        pieces.push(Piece::Text(chunk_text(text, *chunk)));
                    }
                }
                Step::Reasoning { text, chunk } => {
                    output_chars += text.chars().count();
                    if !text.is_empty() {
                        pieces.push(Piece::Reasoning(chunk_text(text, *chunk)));
                    }
                }
                Step::RedactedThinking(data) => {
                    output_chars += data.chars().count();
                    pieces.push(Piece::Redacted(data.clone()));
                }
                Step::ToolCall(call) => {
                    let arguments = call.arguments_text();
                    output_chars += arguments.chars().count() + call.name.len();
                    let fragments = split_even(&arguments, call.split.unwrap_or(1));
                    pieces.push(Piece::ToolCall {
                        index: tool_index,
                        id: call.id.clone().unwrap_or_else(&mut new_id),
                        name: call.name.clone(),
                        arguments,
                        fragments,
                    });
                    tool_index += 1;
                }
                Step::Delay { ms } => pieces.push(Piece::Delay(*ms)),
                Step::Cut => pieces.push(Piece::Cut),
                Step::Malformed(raw) => pieces.push(Piece::Malformed(raw.clone())),
            }
        }
        let finish = reply.finish.unwrap_or(if tool_index > 0 {
            Finish::ToolCalls
        } else {
            Finish::Stop
        });
        let usage = reply.usage.unwrap_or_default();
        Plan {
            pieces,
            finish,
            input_tokens: usage.input_tokens.unwrap_or(input_estimate),
            output_tokens: usage
                .output_tokens
                .unwrap_or_else(|| estimate_tokens(output_chars)),
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            report_usage: !usage.omitted,
        }
    }

    /// Applies a prompt-cache outcome over a prompt of `total` tokens: the scripted counts
    /// win, the simulated ones fill in, and the full-rate input is what remains (unless
    /// the script fixed it).
    pub fn apply_cache(&mut self, usage: Option<&Usage>, total: u64, read: u64, write: u64) {
        let scripted = usage.copied().unwrap_or_default();
        self.cache_read_tokens = scripted.cache_read_input_tokens.unwrap_or(read);
        self.cache_write_tokens = scripted.cache_creation_input_tokens.unwrap_or(write);
        if scripted.input_tokens.is_none() {
            self.input_tokens = total
                .saturating_sub(self.cache_read_tokens)
                .saturating_sub(self.cache_write_tokens)
                .max(1);
        }
    }

    /// Whether the connection is to be dropped.
    pub fn has_cut(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Cut))
    }

    /// The first malformed line, which replaces a non-streaming body.
    pub fn malformed(&self) -> Option<&str> {
        self.pieces.iter().find_map(|p| match p {
            Piece::Malformed(raw) => Some(raw.as_str()),
            _ => None,
        })
    }

    /// The sum of all pauses, waited before a non-streaming body.
    pub fn total_delay_ms(&self) -> u64 {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Delay(ms) => *ms,
                _ => 0,
            })
            .sum()
    }
}

/// Response-level facts both dialects echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Completion / message id.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Model name echoed from the request.
    pub model: String,
    /// Whether an OpenAI stream ends with a usage chunk.
    pub include_usage: bool,
}

/// What the streaming body sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Bytes of one SSE event, blank line included.
    Data(Bytes),
    /// A pause.
    Delay(u64),
    /// Abort the connection.
    Cut,
}

impl Frame {
    /// An SSE event with an optional `event:` line.
    pub fn sse(event: Option<&str>, data: &str) -> Frame {
        let text = match event {
            Some(name) => format!("event: {name}\ndata: {data}\n\n"),
            None => format!("data: {data}\n\n"),
        };
        Frame::Data(Bytes::from(text))
    }
}

/// Rough token count: four characters a token, at least one.
pub(crate) fn estimate_tokens(chars: usize) -> u64 {
    (chars.div_ceil(4)).max(1) as u64
}

/// Cuts text into deltas of `chunk` characters (one delta when `None`).
pub(crate) fn chunk_text(text: &str, chunk: Option<usize>) -> Vec<String> {
    let Some(size) = chunk.filter(|n| *n > 0) else {
        return vec![text.to_owned()];
    };
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// Cuts a string into `parts` fragments of near-equal character counts (fewer if it is short).
pub(crate) fn split_even(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = parts.min(chars.len()).max(1);
    let base = chars.len() / n;
    let extra = chars.len() % n;
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let len = base + usize::from(i < extra);
        out.push(chars[start..start + len].iter().collect());
        start += len;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::script::ToolCall;

    #[test]
    fn splits_evenly_on_char_boundaries() {
        assert_eq!(split_even("abcdefg", 3), vec!["abc", "de", "fg"]);
        assert_eq!(split_even("ab", 5), vec!["a", "b"]);
        assert_eq!(split_even("", 3), vec![""]);
        assert_eq!(split_even("héllo", 2), vec!["hél", "lo"]);
        assert_eq!(split_even("x", 1), vec!["x"]);
    }

    #[test]
    fn chunks_text() {
        assert_eq!(chunk_text("abcdefg", Some(3)), vec!["abc", "def", "g"]);
        assert_eq!(chunk_text("abc", None), vec!["abc"]);
        assert_eq!(chunk_text("äöü", Some(2)), vec!["äö", "ü"]);
    }

    #[test]
    fn default_finish_and_ids() {
        let reply = Reply {
            steps: vec![
                Step::ToolCall(ToolCall {
                    id: None,
                    name: "a".into(),
                    arguments: serde_json::json!({"x": 1}),
                    split: Some(2),
                }),
                Step::ToolCall(ToolCall {
                    id: Some("mine".into()),
                    name: "b".into(),
                    arguments: serde_json::json!({}),
                    split: None,
                }),
            ],
            finish: None,
            usage: Some(Usage {
                output_tokens: Some(7),
                ..Usage::default()
            }),
        };
        let mut n = 0;
        let plan = Plan::new(&reply, 11, || {
            n += 1;
            format!("gen{n}")
        });
        assert_eq!(plan.finish, Finish::ToolCalls);
        assert_eq!(plan.input_tokens, 11);
        assert_eq!(plan.output_tokens, 7);
        match &plan.pieces[0] {
            Piece::ToolCall {
                index,
                id,
                fragments,
                arguments,
                ..
            } => {
                assert_eq!((*index, id.as_str()), (0, "gen1"));
                assert_eq!(fragments.concat(), *arguments);
                assert_eq!(fragments.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        match &plan.pieces[1] {
            Piece::ToolCall { index, id, .. } => assert_eq!((*index, id.as_str()), (1, "mine")),
            other => panic!("{other:?}"),
        }
        let text_only = Plan::new(
            &Reply {
                steps: vec![Step::Text {
                    text: "hi".into(),
                    chunk: None,
                }],
                ..Reply::default()
            },
            1,
            String::new,
        );
        assert_eq!(text_only.finish, Finish::Stop);
    }
}
