//! One assistant message's answer text, as OpenCode streams it: parts that grow by deltas or
//! arrive whole, reasoning that must stay hidden, and retried attempts that restart the
//! text inside the same message. What has been shown is remembered, so the stream gets
//! each piece of text once and in order, whatever mix of deltas, full updates, polls and
//! retries delivered it.

use std::collections::HashSet;

/// A text-like part (`text`, `reasoning`, or not yet known) of one message.
#[derive(Debug, Clone)]
struct TextPart {
    id: String,
    /// `None` until a `message.part.updated` says what the part is (deltas do not).
    kind: Option<String>,
    /// The attempt (number of step-starts seen) the part belongs to.
    attempt: u32,
    text: String,
    hidden: bool,
    /// An update said the part ended: its text is whole, and a delta still on its way
    /// (a snapshot can overtake the events) adds nothing.
    whole: bool,
}

/// What changed for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextChange {
    /// New text to append under `message_id`.
    Delta {
        /// The message id the stream uses.
        message_id: String,
        /// The new text.
        delta: String,
    },
    /// A retried attempt said something other than what was shown: the new text streams
    /// under a fresh message id (text already shown cannot be taken back).
    Restarted {
        /// The fresh message id.
        message_id: String,
        /// The new attempt's text so far.
        delta: String,
    },
}

/// The answer text of one assistant message.
#[derive(Debug, Clone)]
pub struct MessageText {
    id: String,
    stream_id: String,
    restarts: u32,
    parts: Vec<TextPart>,
    step_starts: HashSet<String>,
    shown: String,
}

impl MessageText {
    /// Tracks message `id` (OpenCode's `msg_…`).
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            stream_id: id.to_owned(),
            restarts: 0,
            parts: Vec::new(),
            step_starts: HashSet::new(),
            shown: String::new(),
        }
    }

    /// The id events carry for this message's text.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// A `step-start` part: a model call begins; a second one in the same message is a retry
    /// whose text replaces the previous attempt's.
    pub fn step_started(&mut self, part_id: &str) {
        self.step_starts.insert(part_id.to_owned());
    }

    fn attempt(&self) -> u32 {
        self.step_starts.len() as u32
    }

    fn part(&mut self, part_id: &str) -> &mut TextPart {
        let attempt = self.attempt();
        let index = match self.parts.iter().position(|p| p.id == part_id) {
            Some(index) => index,
            None => {
                self.parts.push(TextPart {
                    id: part_id.to_owned(),
                    kind: None,
                    attempt,
                    text: String::new(),
                    hidden: false,
                    whole: false,
                });
                self.parts.len() - 1
            }
        };
        &mut self.parts[index]
    }

    /// A part's update: its kind and full text (which never shrinks what deltas delivered),
    /// and whether it `ended`.
    pub fn part_updated(
        &mut self,
        part_id: &str,
        kind: &str,
        text: &str,
        hidden: bool,
        ended: bool,
    ) {
        let part = self.part(part_id);
        part.kind = Some(kind.to_owned());
        part.hidden = hidden;
        part.whole |= ended;
        if text.len() >= part.text.len() {
            part.text = text.to_owned();
        }
    }

    /// Text appended to a part (its kind may still be unknown), unless the part is whole.
    pub fn delta(&mut self, part_id: &str, delta: &str) {
        let part = self.part(part_id);
        if !part.whole {
            part.text.push_str(delta);
        }
    }

    /// The current attempt's answer text: its text parts in order, reasoning and parts of
    /// unknown kind left out.
    pub fn visible(&self) -> String {
        let attempt = self.attempt();
        self.parts
            .iter()
            .filter(|p| p.attempt == attempt && !p.hidden && p.kind.as_deref() == Some("text"))
            .map(|p| p.text.as_str())
            .collect()
    }

    /// What the stream needs now, given everything shown so far.
    pub fn change(&mut self) -> Option<TextChange> {
        let visible = self.visible();
        if let Some(new) = visible.strip_prefix(self.shown.as_str()) {
            if new.is_empty() {
                return None;
            }
            let delta = new.to_owned();
            self.shown = visible;
            return Some(TextChange::Delta {
                message_id: self.stream_id.clone(),
                delta,
            });
        }
        if self.shown.starts_with(&visible) {
            // A retry replaying text an abandoned attempt already showed: nothing new yet.
            return None;
        }
        self.restarts += 1;
        self.stream_id = format!("{}-attempt-{}", self.id, self.restarts + 1);
        self.shown = visible.clone();
        Some(TextChange::Restarted {
            message_id: self.stream_id.clone(),
            delta: visible,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(text: &str) -> Option<TextChange> {
        Some(TextChange::Delta {
            message_id: "m".into(),
            delta: text.into(),
        })
    }

    #[test]
    fn deltas_then_a_full_update_show_each_piece_once() {
        let mut m = MessageText::new("m");
        m.step_started("s1");
        m.part_updated("p", "text", "", false, false);
        m.delta("p", "Hel");
        assert_eq!(m.change(), delta("Hel"));
        m.delta("p", "lo");
        assert_eq!(m.change(), delta("lo"));
        m.part_updated("p", "text", "Hello world", false, false);
        assert_eq!(m.change(), delta(" world"));
        m.part_updated("p", "text", "Hello world", false, false);
        assert_eq!(m.change(), None);
    }

    #[test]
    fn deltas_after_a_part_ended_add_nothing() {
        let mut m = MessageText::new("m");
        m.step_started("s1");
        m.part_updated("p", "text", "Hello world", false, true);
        assert_eq!(m.change(), delta("Hello world"));
        m.part_updated("p", "text", "", false, false);
        m.delta("p", "Hello ");
        m.delta("p", "world");
        assert_eq!(m.change(), None);
        assert_eq!(m.visible(), "Hello world");
    }

    #[test]
    fn reasoning_and_unknown_parts_stay_hidden_until_known() {
        let mut m = MessageText::new("m");
        m.step_started("s1");
        m.delta("r", "secret");
        assert_eq!(m.change(), None);
        m.part_updated("r", "reasoning", "secret", false, false);
        assert_eq!(m.change(), None);
        m.delta("t", "Answer");
        assert_eq!(m.change(), None);
        m.part_updated("t", "text", "Answer", false, false);
        assert_eq!(m.change(), delta("Answer"));
    }

    #[test]
    fn a_retry_replaying_the_same_text_shows_nothing_twice() {
        let mut m = MessageText::new("m");
        m.step_started("s1");
        m.part_updated("a", "text", "", false, false);
        m.delta("a", "partial ");
        assert_eq!(m.change(), delta("partial "));
        m.step_started("s2");
        assert_eq!(m.change(), None);
        m.part_updated("b", "text", "", false, false);
        m.delta("b", "part");
        assert_eq!(m.change(), None);
        m.delta("b", "ial ");
        assert_eq!(m.change(), None);
        m.delta("b", "and more");
        assert_eq!(m.change(), delta("and more"));
        assert_eq!(m.visible(), "partial and more");
    }

    #[test]
    fn a_retry_saying_something_else_streams_under_a_new_id() {
        let mut m = MessageText::new("m");
        m.step_started("s1");
        m.part_updated("a", "text", "first try", false, false);
        assert_eq!(m.change(), delta("first try"));
        m.step_started("s2");
        m.part_updated("b", "text", "second", false, false);
        assert_eq!(
            m.change(),
            Some(TextChange::Restarted {
                message_id: "m-attempt-2".into(),
                delta: "second".into()
            })
        );
        assert_eq!(m.stream_id(), "m-attempt-2");
    }
}
