//! The one history formatter both engines use: earlier turns of a chat session, bounded by
//! a budget of turns and characters. The newest turns are kept whole; older ones are
//! dropped and replaced by a single note saying how many were left out.

use serde::{Deserialize, Serialize};

use crate::model::Speaker;

/// Default number of earlier messages kept.
pub const DEFAULT_MAX_TURNS: usize = 20;
/// Default character budget for earlier messages.
pub const DEFAULT_MAX_CHARS: usize = 24_000;
/// Longest single message kept before it is cut.
pub const MAX_MESSAGE_CHARS: usize = 8_000;

/// One earlier message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryTurn {
    /// Who said it.
    pub speaker: Speaker,
    /// What was said (possibly shortened).
    pub text: String,
}

/// Keeps the newest messages within `max_turns` and `max_chars`, oldest dropped first, and
/// starts with a note when anything was dropped. A message over [`MAX_MESSAGE_CHARS`] keeps
/// its beginning and end.
pub fn bounded_history(
    messages: &[(Speaker, String)],
    max_turns: usize,
    max_chars: usize,
) -> Vec<HistoryTurn> {
    let mut kept = Vec::new();
    let mut used = 0usize;
    for (speaker, text) in messages.iter().rev() {
        let text = shorten(text, MAX_MESSAGE_CHARS);
        let len = text.chars().count();
        if kept.len() >= max_turns || used + len > max_chars {
            break;
        }
        used += len;
        kept.push(HistoryTurn {
            speaker: *speaker,
            text,
        });
    }
    let dropped = messages.len() - kept.len();
    kept.reverse();
    // A conversation shown to a model starts with the user.
    while kept
        .first()
        .is_some_and(|t| t.speaker == Speaker::Assistant)
    {
        kept.remove(0);
    }
    let dropped_total = messages.len() - kept.len();
    if dropped > 0 || dropped_total > 0 {
        kept.insert(
            0,
            HistoryTurn {
                speaker: Speaker::User,
                text: format!(
                    "[{dropped_total} earlier message(s) of this chat were left out to stay within the context budget.]"
                ),
            },
        );
    }
    kept
}

/// The history as plain text, for engines that take one prompt string (OpenCode): each
/// turn labelled with its speaker, oldest first.
pub fn render_transcript(turns: &[HistoryTurn]) -> String {
    let mut out = String::new();
    for turn in turns {
        let who = match turn.speaker {
            Speaker::User => "User",
            Speaker::Assistant => "Assistant",
        };
        out.push_str(&format!("{who}: {}\n\n", turn.text));
    }
    out
}

fn shorten(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max / 2).collect();
    let tail: String = text.chars().skip(count - max / 2).collect();
    format!("{head}\n[… {} characters left out …]\n{tail}", count - max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(n: usize) -> Vec<(Speaker, String)> {
        (0..n)
            .map(|i| {
                let speaker = if i % 2 == 0 {
                    Speaker::User
                } else {
                    Speaker::Assistant
                };
                (speaker, format!("message {i}"))
            })
            .collect()
    }

    #[test]
    fn keeps_everything_within_budget() {
        let history = bounded_history(&turns(4), 10, 1000);
        assert_eq!(history.len(), 4);
        assert_eq!(history[0].text, "message 0");
    }

    #[test]
    fn drops_the_oldest_and_says_so() {
        let history = bounded_history(&turns(10), 4, 1000);
        assert_eq!(history.len(), 5);
        assert!(
            history[0].text.contains("6 earlier message(s)"),
            "{history:?}"
        );
        assert_eq!(history[1].text, "message 6");
        assert_eq!(history[4].text, "message 9");
        let by_chars = bounded_history(&turns(10), 100, 30);
        assert!(by_chars.len() < 10);
        assert_eq!(by_chars.last().map(|t| t.text.as_str()), Some("message 9"));
    }

    #[test]
    fn long_messages_keep_both_ends() {
        let long = format!("start{}end", "x".repeat(20_000));
        let history = bounded_history(&[(Speaker::User, long)], 10, 100_000);
        assert!(history[0].text.starts_with("start") && history[0].text.ends_with("end"));
        assert!(history[0].text.chars().count() < 9_000);
    }
}
