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

use draftsmith_core::{ChatSessionId, EngineKind};
use draftsmith_sandbox::SandboxId;

use crate::config::WarmChats;
use crate::{Runner, run};

/// How long after a failed making the next is tried.
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

impl Runner {
    /// The chats of `template` made ahead and ready for a new chat's first OpenCode run
    /// (for tests and diagnostics).
    pub fn warm_chats(&self, template: &str) -> Vec<ChatSessionId> {
        self.inner.warm.ready(template)
    }

    /// Starts the next work on the chats made ahead, only while no run executes here and
    /// the OpenCode engine is installed.
    pub(crate) fn keep_warm(&self) {
        let config = self.config();
        if config.warm_chats.per_template == 0 || config.policy.opencode_unavailable.is_some() {
            return;
        }
        let idle = self.inner.active.lock().is_ok_and(|a| a.is_empty());
        if !idle {
            return;
        }
        let Some(work) = self
            .inner
            .warm
            .next(&config.warm_chats, config.sandbox_ttl / 3)
        else {
            return;
        };
        let runner = self.clone();
        self.inner
            .tasks
            .spawn(async move { runner.warm(work).await });
    }

    async fn warm(&self, work: Work) {
        let pool = &self.inner.warm;
        match work {
            Work::Make(template) => {
                let chat = ChatSessionId::new();
                match self.make_warm_chat(&template, chat).await {
                    Ok(()) => pool.done(Some((template, chat)), false),
                    Err(error) => {
                        tracing::warn!(%template, %error, "cannot make a chat ahead");
                        pool.done(None, true);
                    }
                }
            }
            Work::Renew(chats) => {
                // Only the sandbox's TTL: a run may have taken the chat meanwhile, and its
                // server is the run's now.
                let ttl = self.config().sandbox_ttl;
                for (template, chat) in chats {
                    let id = SandboxId::for_chat(chat);
                    match self
                        .inner
                        .services
                        .controller
                        .create(&id, &template, ttl)
                        .await
                    {
                        Ok(created) if created.reused => {}
                        // Expired and made anew: no server in it. Unless a run took it
                        // meanwhile, it goes, and the pool makes another.
                        Ok(_) if pool.forget(&template, chat) => {
                            tracing::info!(%template, %chat, "a chat made ahead had expired");
                            if let Err(error) = run::stop_sandbox(&self.inner.services, &id).await {
                                tracing::warn!(%chat, %error, "cannot stop an expired chat made ahead");
                            }
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(%template, %chat, %error, "cannot keep a chat made ahead");
                            pool.forget(&template, chat);
                        }
                    }
                }
                pool.done(None, false);
            }
        }
    }

    /// Makes the sandbox of new chat `chat` of `template` and has the OpenCode engine start
    /// and warm up its server there for the default model.
    async fn make_warm_chat(&self, template: &str, chat: ChatSessionId) -> Result<(), String> {
        let services = &self.inner.services;
        let engine = services
            .engines
            .get(EngineKind::Opencode)
            .ok_or("the OpenCode engine is not installed")?;
        let model = self.registry().resolve(None).map_err(|e| e.0)?;
        let id = SandboxId::for_chat(chat);
        let ttl = self.config().sandbox_ttl;
        services
            .controller
            .create(&id, template, ttl)
            .await
            .map_err(|e| e.to_string())?;
        let workspace = services
            .controller
            .workspace_dir(&id)
            .ok_or("the sandbox has no workspace on this host")?;
        // Kept alive while its server starts: a start slower than the TTL (a loaded host,
        // a short TTL) would otherwise see the sandbox expire under it.
        let keep_alive = async {
            loop {
                tokio::time::sleep(ttl / 3).await;
                if let Err(error) = services.controller.create(&id, template, ttl).await {
                    tracing::debug!(%chat, %error, "cannot renew a chat being made ahead");
                }
            }
        };
        tokio::select! {
            () = engine.prepare_ahead(&workspace, &model) => {}
            () = keep_alive => {}
        }
        // Its TTL runs from now: the server's start may have taken a good part of it.
        let renewed = services.controller.create(&id, template, ttl).await;
        match renewed.map_err(|e| e.to_string())? {
            created if created.reused => Ok(()),
            _ => Err("its sandbox expired while its server started".into()),
        }
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
