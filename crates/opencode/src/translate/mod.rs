//! OpenCode's session events → draftsmith's run events. Pure state, no I/O: the run loop
//! feeds it events from `/event` or messages polled from `/session/{id}/message`
//! (both may repeat and overlap) and forwards what it returns.

mod text;
mod tools;
mod usage;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use draftsmith_core::{Diagnostic, ErrorCode, EventBody, EventError};
use draftsmith_engine::Outcome;

pub use text::{MessageText, TextChange};
pub use tools::ToolCalls;
pub use usage::{ReportedCall, UsageLog};

use crate::wire::{Event, MessageInfo, MessageWithParts, OpencodeError, Part, SessionStatus};

/// A streak of retried model calls with no call finishing in between.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryStreak {
    /// When the streak began.
    pub since: Instant,
    /// The latest attempt number.
    pub attempt: u64,
    /// The upstream's latest error.
    pub message: String,
}

#[derive(Debug)]
struct Message {
    role: Option<String>,
    text: MessageText,
    /// OpenCode reported the message failed (an aborted or failed model call).
    failed: bool,
    /// The answer text once `assistant.message` was decided (`None` while it may grow).
    final_text: Option<String>,
    /// OpenCode completed the message (`time.completed`).
    completed: bool,
    /// Its finish reason (`stop`, `tool-calls`, …), once reported.
    finish: Option<String>,
    /// Its step's end (the `step-finish` part) was seen.
    step_finished: bool,
    /// Its text and reasoning parts seen without an end, or only through deltas: they
    /// may still grow.
    open_parts: HashSet<String>,
}

/// The translation state of one run.
#[derive(Debug)]
pub struct Translator {
    workspace: PathBuf,
    messages: HashMap<String, Message>,
    /// Assistant message ids in the order they appeared.
    order: Vec<String>,
    tools: ToolCalls,
    fatal: Option<EventError>,
    retry: Option<RetryStreak>,
    pending: Vec<Diagnostic>,
    active: bool,
    /// Where the current prompt's model calls begin in `order`.
    prompt_start: usize,
    usage: UsageLog,
}

/// One event for the sink, with the diagnostics that ride on it.
pub type Emitted = (EventBody, Vec<Diagnostic>);

impl Translator {
    /// A translator for a run in `workspace` (paths in tool events are made relative to it).
    pub fn new(workspace: PathBuf) -> Self {
        Self {
            workspace,
            messages: HashMap::new(),
            order: Vec::new(),
            tools: ToolCalls::default(),
            fatal: None,
            retry: None,
            pending: Vec::new(),
            active: false,
            prompt_start: 0,
            usage: UsageLog::default(),
        }
    }

    /// Applies one event of this run's session and returns what to emit.
    pub fn apply(&mut self, event: &Event) -> Vec<Emitted> {
        let mut out = Vec::new();
        match event {
            Event::MessageUpdated(info) => self.message_updated(info, &mut out),
            Event::PartUpdated(part) => self.part_updated(part, &mut out),
            Event::PartDelta {
                message_id,
                part_id,
                field,
                delta,
            } if field == "text" => {
                self.worked_on(message_id);
                let message = self.message(message_id);
                message.text.delta(part_id, delta);
                message.open_parts.insert(part_id.clone());
                self.refresh(message_id, &mut out);
            }
            Event::Status(SessionStatus::Retry {
                attempt, message, ..
            }) => self.retried(*attempt, message),
            Event::Status(SessionStatus::Busy) => self.active = true,
            Event::Error(error) => self.session_error(error.as_ref()),
            _ => {}
        }
        out
    }

    /// Applies a polled snapshot of the session's messages (in order).
    pub fn apply_snapshot(&mut self, messages: &[MessageWithParts]) -> Vec<Emitted> {
        let mut out = Vec::new();
        for message in messages {
            // Parts first, so a completed message is finished with its final text.
            let role = Event::MessageUpdated(MessageInfo {
                time: Default::default(),
                error: None,
                ..message.info.clone()
            });
            out.extend(self.apply(&role));
            for part in &message.parts {
                out.extend(self.apply(&Event::PartUpdated(part.clone())));
            }
            out.extend(self.apply(&Event::MessageUpdated(message.info.clone())));
        }
        out
    }

    fn message(&mut self, id: &str) -> &mut Message {
        self.messages
            .entry(id.to_owned())
            .or_insert_with(|| Message {
                role: None,
                text: MessageText::new(id),
                failed: false,
                final_text: None,
                completed: false,
                finish: None,
                step_finished: false,
                open_parts: HashSet::new(),
            })
    }

    /// The model calls completed since the last take, with what OpenCode said they used.
    pub fn take_calls(&mut self) -> Vec<ReportedCall> {
        self.usage.take()
    }

    fn message_updated(&mut self, info: &MessageInfo, out: &mut Vec<Emitted>) {
        self.usage.observe(info);
        let message = self.message(&info.id);
        let newly_assistant = message.role.is_none() && info.role == "assistant";
        message.role = Some(info.role.clone());
        if info.role != "assistant" {
            return;
        }
        message.completed |= info.time.completed.is_some();
        if let Some(finish) = &info.finish {
            message.finish = Some(finish.clone());
        }
        self.worked_on(&info.id);
        if newly_assistant {
            // A new model call began, so the previous ones are over: their answers are final.
            for id in self.order.clone() {
                self.finalize(&id, out);
            }
            self.order.push(info.id.clone());
        }
        self.refresh(&info.id, out);
        if let Some(error) = &info.error {
            self.session_error(Some(error));
            self.message(&info.id).failed = true;
        } else if info.time.completed.is_some() {
            // A model call finished: whatever retries came before are over.
            self.retry = None;
        }
    }

    /// Decides message `id`'s answer: emits `assistant.message` (unless it failed or said
    /// nothing) and stops following its text. Not done on OpenCode's completion event,
    /// which can overtake the last update of the message's text part: only when the next
    /// model call starts, or in [`Self::finish`] once the session is idle.
    fn finalize(&mut self, id: &str, out: &mut Vec<Emitted>) {
        self.refresh(id, out);
        let message = self.message(id);
        if message.final_text.is_some() {
            return;
        }
        let text = message.text.visible();
        let stream_id = message.text.stream_id().to_owned();
        let failed = message.failed;
        message.final_text = Some(text.clone());
        if !failed && !text.is_empty() {
            let body = EventBody::AssistantMessage {
                message_id: stream_id,
                text,
            };
            self.emit(body, out);
        }
    }

    /// The session is idle and its messages were read a last time: every answer is final.
    pub fn finish(&mut self) -> Vec<Emitted> {
        let mut out = Vec::new();
        for id in self.order.clone() {
            self.finalize(&id, &mut out);
        }
        out
    }

    fn part_updated(&mut self, part: &Part, out: &mut Vec<Emitted>) {
        // The prompt's own part is not a sign of work; anything else is.
        if self.message(&part.message_id).role.as_deref() != Some("user") {
            self.worked_on(&part.message_id);
        }
        match part.kind.as_str() {
            "text" | "reasoning" => {
                let hidden = part.synthetic == Some(true) || part.ignored == Some(true);
                let text = part.text.as_deref().unwrap_or_default();
                let ended = part.time.as_ref().is_some_and(|t| t.end.is_some());
                let message = self.message(&part.message_id);
                message
                    .text
                    .part_updated(&part.id, &part.kind, text, hidden, ended);
                if ended {
                    message.open_parts.remove(&part.id);
                } else {
                    message.open_parts.insert(part.id.clone());
                }
                self.refresh(&part.message_id, out);
            }
            "step-start" => {
                self.message(&part.message_id).text.step_started(&part.id);
                self.refresh(&part.message_id, out);
            }
            "step-finish" => {
                self.retry = None;
                self.message(&part.message_id).step_finished = true;
            }
            "tool" => {
                for event in self.tools.update(part, &self.workspace) {
                    self.emit(event, out);
                }
            }
            _ => {}
        }
    }

    /// Streams whatever new answer text message `id` has (assistant messages only, and
    /// never after the message completed).
    fn refresh(&mut self, id: &str, out: &mut Vec<Emitted>) {
        let message = self.message(id);
        if message.role.as_deref() != Some("assistant") || message.final_text.is_some() {
            return;
        }
        let Some(change) = message.text.change() else {
            return;
        };
        let (message_id, delta) = match change {
            TextChange::Delta { message_id, delta } => (message_id, delta),
            TextChange::Restarted { message_id, delta } => {
                self.pending.push(Diagnostic {
                    code: "opencode_attempt_restarted".into(),
                    message: format!(
                        "a retried model call answered differently; its text continues as {message_id}"
                    ),
                });
                (message_id, delta)
            }
        };
        if !delta.is_empty() {
            self.emit(EventBody::AssistantDelta { delta, message_id }, out);
        }
    }

    fn retried(&mut self, attempt: u64, message: &str) {
        self.active = true;
        let repeated = self.retry.as_ref().is_some_and(|r| r.attempt == attempt);
        let since = self.retry.as_ref().map_or_else(Instant::now, |r| r.since);
        self.retry = Some(RetryStreak {
            since,
            attempt,
            message: message.to_owned(),
        });
        if !repeated {
            self.pending.push(Diagnostic {
                code: "opencode_retry".into(),
                message: format!("OpenCode retries the model call (attempt {attempt}): {message}"),
            });
        }
    }

    fn session_error(&mut self, error: Option<&OpencodeError>) {
        self.active = true;
        let Some(error) = error else {
            return;
        };
        if error.is_abort() || self.fatal.is_some() {
            return;
        }
        self.fatal = Some(EventError {
            code: ErrorCode::CodingAgentModelError,
            message: error.message(),
            field: None,
            details: Some(serde_json::json!({ "opencode_error": error.name })),
        });
    }

    fn emit(&mut self, body: EventBody, out: &mut Vec<Emitted>) {
        out.push((body, std::mem::take(&mut self.pending)));
    }

    /// Whether the session has shown any sign of working on the prompt (an idle status
    /// before that is the state before the prompt, not its end).
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Message `id` changed: a sign of work on the current prompt, unless the message is an
    /// earlier prompt's. A prompt that ended on its synchronous answer leaves its last
    /// events (and its idle) on the way; they must not make the next prompt look started.
    fn worked_on(&mut self, id: &str) {
        if !self.order[..self.prompt_start].iter().any(|m| m == id) {
            self.active = true;
        }
    }

    /// A further prompt was sent to the session (steering): its idle status counts only
    /// once the session has shown work on it.
    pub fn next_prompt(&mut self) {
        self.active = false;
        self.prompt_start = self.order.len();
    }

    /// Whether the events alone show the current prompt's work is over, so an idle needs
    /// no look at the stored messages: its latest model call completed with an answer
    /// (not a call for tools) and no error, that call's step ended, and every text and
    /// reasoning part of it is whole. OpenCode sends a part's last update, the one that
    /// carries its end, before the step's end and the message's completion; where the
    /// completion overtakes it (or deltas overtake the part's first update), the part is
    /// still open here and the idle is checked against the messages instead. A pending
    /// retry or a session error never settles.
    pub fn settled(&self) -> bool {
        if self.retry.is_some() || self.fatal.is_some() {
            return false;
        }
        let Some(latest) = self.order.get(self.prompt_start..).and_then(<[_]>::last) else {
            return false;
        };
        self.messages.get(latest).is_some_and(|m| {
            !m.failed
                && m.completed
                && m.step_finished
                && m.open_parts.is_empty()
                && m.finish.as_deref().is_some_and(|f| f != "tool-calls")
        })
    }

    /// Whether `last`, the synchronous prompt's answer, ends the run when the model gate
    /// forwarded `answers` model calls: it is a finished answer (completed, no error, not
    /// asking for tools), no retry or session error is pending, and the events showed every
    /// model call before it to its end: as many assistant messages (with `last`) as calls,
    /// each earlier one completed with its step ended, every tool call settled. Checked
    /// before `last` is applied, so a run that does not end on it takes its own events in
    /// their order.
    pub fn ends_with(&self, last: &MessageWithParts, answers: usize) -> bool {
        let info = &last.info;
        let answered = info.ends_the_work() && info.error.is_none() && info.finish.is_some();
        if !answered || self.retry.is_some() || self.fatal.is_some() {
            return false;
        }
        let earlier = match self.order.split_last() {
            Some((latest, earlier)) if *latest == info.id => earlier,
            _ => &self.order[..],
        };
        earlier.len() + 1 == answers
            && earlier.iter().all(|id| {
                self.messages
                    .get(id)
                    .is_some_and(|m| m.completed && m.step_finished)
            })
            && self.tools.all_settled()
    }

    /// The current retry streak, if the model call is being retried.
    pub fn retry(&self) -> Option<&RetryStreak> {
        self.retry.as_ref()
    }

    /// How many assistant messages (model calls) the run has made.
    pub fn steps(&self) -> usize {
        self.order.len()
    }

    /// A true assistant or session error seen so far.
    pub fn fatal(&self) -> Option<&EventError> {
        self.fatal.as_ref()
    }

    /// How the run ended once the session went idle.
    pub fn outcome(&self, fail_on_unrecovered_edit: bool) -> Outcome {
        if let Some(error) = &self.fatal {
            return Outcome::Failed {
                error: error.clone(),
            };
        }
        if fail_on_unrecovered_edit && let Some(error) = self.tools.unrecovered_edit() {
            return Outcome::Failed { error };
        }
        let summary = self.answers().into_iter().next_back().unwrap_or_default();
        Outcome::Completed { summary }
    }

    /// Every assistant message's answer text in order (a message still streaming counts
    /// with its current attempt's text; abandoned attempts never count).
    pub fn answers(&self) -> Vec<String> {
        self.order
            .iter()
            .filter_map(|id| self.messages.get(id))
            .map(|m| m.final_text.clone().unwrap_or_else(|| m.text.visible()))
            .filter(|text| !text.is_empty())
            .collect()
    }

    /// The transcript: all answer text, turns separated by blank lines.
    pub fn transcript(&self) -> String {
        self.answers().join("\n\n")
    }
}

#[cfg(test)]
mod tests;
