//! Warm chats: new chats made ahead, a few per template, for runs of the OpenCode engine.
//! Each is a chat id whose sandbox exists (made as any chat's is, with its own uid, cgroup
//! and network namespace) and whose engine has started what it needs there (OpenCode's
//! server and the session its first run takes), so a new chat's first run starts on a
//! ready server instead of waiting seconds for one to boot.
//!
//! They hold only a template's files (a spare's content), never a user's, and each goes to
//! exactly one new chat: taken out of the pool under its lock, and given back when the run
//! could not be created. They are made one at a time and only while no run executes on
//! this instance (a server's start takes a core for a second or more), and renewed before
//! their sandbox expires. A restart forgets them; their sandboxes expire as idle ones do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use draftsmith_core::ChatSessionId;

use crate::config::WarmChats;

/// Longest wait before a failed warm chat is tried again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

/// The ready chats, per template, and the state of their making.
#[derive(Debug, Default)]
pub(crate) struct WarmPool {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    ready: HashMap<String, Vec<ChatSessionId>>,
    /// A chat being made, or renewed.
    busy: bool,
    /// No making before then (after a failure).
    not_before: Option<Instant>,
    /// When the ready ones were last renewed.
    renewed: Option<Instant>,
}

/// What the pool asks for next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Work {
    /// Make a chat of this template.
    Make(String),
    /// Keep these from expiring (template, chat).
    Renew(Vec<(String, ChatSessionId)>),
}

impl WarmPool {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A ready chat of `template`, taken out of the pool.
    pub(crate) fn take(&self, template: &str) -> Option<ChatSessionId> {
        self.state().ready.get_mut(template)?.pop()
    }

    /// The ready chats of `template`.
    pub(crate) fn ready(&self, template: &str) -> Vec<ChatSessionId> {
        self.state()
            .ready
            .get(template)
            .cloned()
            .unwrap_or_default()
    }

    /// How many chats are ready, of every template.
    pub(crate) fn count(&self) -> usize {
        self.state().ready.values().map(Vec::len).sum()
    }

    /// Puts back a chat taken for a run that was not created.
    pub(crate) fn give_back(&self, template: &str, chat: ChatSessionId) {
        self.state()
            .ready
            .entry(template.to_owned())
            .or_default()
            .push(chat);
    }

    /// The next work to do for `wanted` (marked busy until [`WarmPool::done`]): renewing
    /// the ready chats every `renew_every`, else making a missing one.
    pub(crate) fn next(&self, wanted: &WarmChats, renew_every: Duration) -> Option<Work> {
        let mut state = self.state();
        if state.busy || wanted.per_template == 0 {
            return None;
        }
        let now = Instant::now();
        let due = state.renewed.is_none_or(|at| now >= at + renew_every);
        if due && state.ready.values().any(|chats| !chats.is_empty()) {
            state.busy = true;
            state.renewed = Some(now);
            let all = state
                .ready
                .iter()
                .flat_map(|(t, chats)| chats.iter().map(|c| (t.clone(), *c)))
                .collect();
            return Some(Work::Renew(all));
        }
        if state.not_before.is_some_and(|at| now < at) {
            return None;
        }
        let missing = wanted
            .templates
            .iter()
            .find(|t| state.ready.get(t.as_str()).map_or(0, Vec::len) < wanted.per_template)?;
        let template = missing.clone();
        state.busy = true;
        Some(Work::Make(template))
    }

    /// Ends the work [`WarmPool::next`] gave: `made` joins the pool; `None` after a failed
    /// making waits before the next.
    pub(crate) fn done(&self, made: Option<(String, ChatSessionId)>, failed: bool) {
        let mut state = self.state();
        state.busy = false;
        if failed {
            state.not_before = Some(Instant::now() + RETRY_AFTER_FAILURE);
        }
        if let Some((template, chat)) = made {
            state.ready.entry(template).or_default().push(chat);
        }
    }

    /// Forgets `chat` of `template` (its renewal failed); whether it was still ready.
    pub(crate) fn forget(&self, template: &str, chat: ChatSessionId) -> bool {
        let mut state = self.state();
        let Some(chats) = state.ready.get_mut(template) else {
            return false;
        };
        let before = chats.len();
        chats.retain(|c| *c != chat);
        chats.len() < before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(per_template: usize) -> WarmChats {
        WarmChats {
            per_template,
            templates: vec!["static".into(), "vite-react".into()],
        }
    }

    #[test]
    fn makes_what_is_missing_one_at_a_time_and_hands_each_out_once() {
        let pool = WarmPool::default();
        let hour = Duration::from_secs(3600);
        assert_eq!(pool.next(&wanted(0), hour), None);
        assert_eq!(
            pool.next(&wanted(1), hour),
            Some(Work::Make("static".into()))
        );
        assert_eq!(pool.next(&wanted(1), hour), None, "one at a time");
        let chat = ChatSessionId::new();
        pool.done(Some(("static".into(), chat)), false);
        assert_eq!(
            pool.next(&wanted(1), hour),
            Some(Work::Renew(vec![("static".into(), chat)])),
            "the first ready chat is renewed at once, then every hour"
        );
        pool.done(None, false);
        assert_eq!(
            pool.next(&wanted(1), hour),
            Some(Work::Make("vite-react".into()))
        );
        pool.done(None, true);
        assert_eq!(pool.next(&wanted(1), hour), None, "a failure waits");
        assert_eq!(pool.take("vite-react"), None);
        assert_eq!(pool.take("static"), Some(chat));
        assert_eq!(pool.take("static"), None, "each chat goes once");
        pool.give_back("static", chat);
        assert!(pool.forget("static", chat));
        assert!(!pool.forget("static", chat), "forgotten once");
        assert_eq!(pool.take("static"), None);
    }
}
