//! The chat history both engines are given: whole recent turns, and before them a summary of
//! the older ones. The summary is persisted by the caller, made once and reused by every
//! later run while summary plus recent turns fit the budget; when they no longer do, a new
//! summary folds the old one and the turns that left the recent window (keeping only a
//! quarter of the budget of recent turns, so the next remake is many runs away).

use serde::{Deserialize, Serialize};

use crate::context::tokens_of;
use crate::model::Speaker;

/// Longest single message kept before it is cut.
pub const MAX_MESSAGE_CHARS: usize = 8_000;
/// Most tokens a history takes, whatever the window.
pub const MAX_HISTORY_TOKENS: usize = 24_000;
/// Tokens counted for each turn's framing.
const TURN_FRAMING_TOKENS: usize = 8;

/// What the summariser is told (the scripted model recognises its first words).
pub const CHAT_SUMMARY_INSTRUCTIONS: &str = "You condense the earlier part of a chat between \
    a person and an AI coding agent that builds their web app, so the agent can go on \
    without it. Keep what the person asked for and decided (features, looks, names, \
    constraints), what the agent built or changed, and anything still open. Keep names and \
    paths exact. Answer with the summary only.";

/// One earlier message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryTurn {
    /// Who said it.
    pub speaker: Speaker,
    /// What was said (possibly shortened).
    pub text: String,
}

/// A stored message of the chat, oldest first, as the planner reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierMessage {
    /// Its id, which a summary names as the last message it covers.
    pub id: String,
    /// Who said it.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
}

/// The chat's persisted summary: it stands for every message up to and including
/// `through_message_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSummary {
    /// The last message it covers.
    pub through_message_id: String,
    /// The summary.
    pub text: String,
}

/// Tokens a history may take for a model with `context_window` tokens: a quarter of it, at
/// most [`MAX_HISTORY_TOKENS`].
pub fn history_budget(context_window: u32) -> usize {
    (context_window as usize / 4).min(MAX_HISTORY_TOKENS)
}

/// What to give the engine, or the summary to write first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryPlan {
    /// The history, ready (everything, or the stored summary and the turns after it).
    Ready(Vec<HistoryTurn>),
    /// A (new) summary is needed.
    Summarise(SummaryTask),
}

/// A summary to write: the log to give the summariser, what it will cover, and the recent
/// turns that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryTask {
    /// The old summary (if any) and the messages to fold in, as a plain-text log.
    pub log: String,
    /// The last message the new summary covers.
    pub through_message_id: String,
    /// Messages it covers, the old summary's included.
    pub covered: usize,
    recent: Vec<HistoryTurn>,
}

impl SummaryTask {
    /// The history once `summary` is written: the summary, then the recent turns.
    pub fn with_summary(self, summary: &str) -> Vec<HistoryTurn> {
        with_summary_turn(summary, self.recent)
    }

    /// The history when no summary could be written: a note saying how many messages were
    /// left out, then the recent turns.
    pub fn without_summary(self) -> Vec<HistoryTurn> {
        let note = HistoryTurn {
            speaker: Speaker::User,
            text: format!(
                "[{} earlier message(s) of this chat were left out to stay within the context budget.]",
                self.covered
            ),
        };
        std::iter::once(note).chain(self.recent).collect()
    }
}

/// Plans the history of `messages` (oldest first) within `budget` tokens, given the chat's
/// stored summary.
pub fn plan_history(
    messages: &[EarlierMessage],
    summary: Option<&StoredSummary>,
    budget: usize,
) -> HistoryPlan {
    let covered = summary.and_then(|s| {
        messages
            .iter()
            .position(|m| m.id == s.through_message_id)
            .map(|at| (s, at + 1))
    });
    let start = covered.map_or(0, |(_, end)| end);
    let summary_tokens = covered.map_or(0, |(s, _)| turn_tokens(&s.text));
    let recent = turns(&messages[start..]);
    if summary_tokens + recent.iter().map(|t| turn_tokens(&t.text)).sum::<usize>() <= budget {
        let recent = from_user(recent);
        return HistoryPlan::Ready(match covered {
            Some((s, _)) => with_summary_turn(&s.text, recent),
            None => recent,
        });
    }
    // Remake: keep a quarter of the budget of newest turns, fold the rest in.
    let keep_from = keep_from(messages, start, budget / 4);
    let mut log = String::new();
    if let Some((s, _)) = covered {
        log.push_str(&format!("Summary of what came before:\n{}\n\n", s.text));
    }
    log.push_str(&render_transcript(&turns(&messages[start..keep_from])));
    HistoryPlan::Summarise(SummaryTask {
        log,
        through_message_id: messages[keep_from - 1].id.clone(),
        covered: keep_from,
        recent: turns(&messages[keep_from..]),
    })
}

/// Where the kept recent turns start: the oldest user message after `start` from which the
/// rest fits `keep` tokens (past at least one message, so a remake always covers something).
fn keep_from(messages: &[EarlierMessage], start: usize, keep: usize) -> usize {
    let mut from = messages.len();
    let mut used = 0;
    for (index, message) in messages.iter().enumerate().skip(start + 1).rev() {
        used += turn_tokens(&shorten(&message.text, MAX_MESSAGE_CHARS));
        if used > keep {
            break;
        }
        if message.speaker == Speaker::User {
            from = index;
        }
    }
    from
}

fn with_summary_turn(summary: &str, recent: Vec<HistoryTurn>) -> Vec<HistoryTurn> {
    let turn = HistoryTurn {
        speaker: Speaker::User,
        text: format!(
            "[Summary of the earlier part of this chat, written to stay within the context budget:]\n{summary}"
        ),
    };
    std::iter::once(turn).chain(from_user(recent)).collect()
}

fn turns(messages: &[EarlierMessage]) -> Vec<HistoryTurn> {
    messages
        .iter()
        .map(|m| HistoryTurn {
            speaker: m.speaker,
            text: shorten(&m.text, MAX_MESSAGE_CHARS),
        })
        .collect()
}

/// A conversation shown to a model starts with the user.
fn from_user(turns: Vec<HistoryTurn>) -> Vec<HistoryTurn> {
    turns
        .into_iter()
        .skip_while(|t| t.speaker == Speaker::Assistant)
        .collect()
}

fn turn_tokens(text: &str) -> usize {
    tokens_of(text.len()) + TURN_FRAMING_TOKENS
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn chat(n: usize) -> Vec<EarlierMessage> {
        (0..n)
            .map(|i| EarlierMessage {
                id: format!("m{i}"),
                speaker: if i % 2 == 0 {
                    Speaker::User
                } else {
                    Speaker::Assistant
                },
                text: format!("message {i} {}", "x".repeat(290)),
            })
            .collect()
    }

    #[test]
    fn everything_within_budget_goes_whole() {
        let HistoryPlan::Ready(turns) = plan_history(&chat(4), None, 10_000) else {
            panic!()
        };
        assert_eq!(turns.len(), 4);
        assert!(turns[0].text.starts_with("message 0 "));
    }

    #[test]
    fn over_budget_asks_for_a_summary_keeping_a_quarter_of_newest_turns() {
        let messages = chat(40);
        let HistoryPlan::Summarise(task) = plan_history(&messages, None, 2_000) else {
            panic!()
        };
        assert!(task.log.contains("message 0 ") && task.log.contains("User: "));
        assert_eq!(messages[task.covered].speaker, Speaker::User);
        assert_eq!(task.through_message_id, format!("m{}", task.covered - 1));
        let turns = task.clone().with_summary("S");
        assert!(turns[0].text.ends_with("\nS"));
        assert_eq!(turns.len(), 1 + 40 - task.covered);
        let kept: usize = turns[1..].iter().map(|t| turn_tokens(&t.text)).sum();
        assert!(kept <= 500 && kept > 250, "{kept}");
        assert!(
            task.without_summary()[0]
                .text
                .contains("earlier message(s)")
        );
    }

    #[test]
    fn a_stored_summary_is_reused_until_it_no_longer_fits() {
        let messages = chat(40);
        let stored = StoredSummary {
            through_message_id: "m29".into(),
            text: "what came before".into(),
        };
        let HistoryPlan::Ready(turns) = plan_history(&messages, Some(&stored), 2_000) else {
            panic!()
        };
        assert!(turns[0].text.ends_with("what came before"));
        assert_eq!(turns.len(), 11);
        assert!(turns[1].text.starts_with("message 30 "));
        // Too many turns after it: a new summary folds the old one in.
        let stored = StoredSummary {
            through_message_id: "m1".into(),
            ..stored
        };
        let HistoryPlan::Summarise(task) = plan_history(&messages, Some(&stored), 2_000) else {
            panic!()
        };
        assert!(
            task.log
                .starts_with("Summary of what came before:\nwhat came before")
        );
        assert!(!task.log.contains("message 1 ") && task.log.contains("message 2 "));
    }
}
