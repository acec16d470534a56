//! OpenCode's wire types, as far as draftsmith reads them (opencode-ai 1.18): sessions,
//! messages and their parts, session status, permission requests, and the events of
//! `GET /event`. Parsing is lenient: unknown fields and event types are ignored, so
//! a newer OpenCode degrades instead of breaking.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// `POST /session` answer (and `session.created` info).
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    /// `ses_…`.
    pub id: String,
    /// The session that spawned it (subagents).
    #[serde(rename = "parentID", default)]
    pub parent_id: Option<String>,
}

/// A message's metadata.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageInfo {
    /// `msg_…`.
    pub id: String,
    /// Its session.
    #[serde(rename = "sessionID", default)]
    pub session_id: String,
    /// `user` or `assistant`.
    pub role: String,
    /// Creation and completion times (ms).
    #[serde(default)]
    pub time: MessageTime,
    /// Why an assistant message failed.
    #[serde(default)]
    pub error: Option<OpencodeError>,
    /// The model's finish reason (`stop`, `tool-calls`, …).
    #[serde(default)]
    pub finish: Option<String>,
    /// What the model call consumed (assistant messages).
    #[serde(default)]
    pub tokens: Option<MessageTokens>,
    /// Its cost in US dollars by OpenCode's own price list (assistant messages).
    #[serde(default)]
    pub cost: Option<f64>,
}

/// An assistant message's token counts.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageTokens {
    /// Input not read from or written to a cache.
    #[serde(default)]
    pub input: u64,
    /// Output, reasoning excluded.
    #[serde(default)]
    pub output: u64,
    /// Reasoning.
    #[serde(default)]
    pub reasoning: u64,
    /// Cache reads and writes.
    #[serde(default)]
    pub cache: CacheTokens,
}

/// Cache reads and writes of a model call.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CacheTokens {
    /// Input read from the cache.
    #[serde(default)]
    pub read: u64,
    /// Input written to the cache.
    #[serde(default)]
    pub write: u64,
}

/// Message timestamps.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageTime {
    /// Created at (ms).
    #[serde(default)]
    pub created: Option<u64>,
    /// Completed at (ms); absent while the message streams.
    #[serde(default)]
    pub completed: Option<u64>,
}

/// An error OpenCode reports on a message or session (`APIError`, `MessageAbortedError`, …).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OpencodeError {
    /// Its class name.
    pub name: String,
    /// Details; `data.message` is the human text.
    #[serde(default)]
    pub data: Value,
}

impl MessageInfo {
    /// A completed assistant message that ends its prompt's work: it failed, or it answered
    /// without calling for more tool rounds.
    pub fn ends_the_work(&self) -> bool {
        self.role == "assistant"
            && self.time.completed.is_some()
            && (self.error.is_some() || self.finish.as_deref() != Some("tool-calls"))
    }
}

impl OpencodeError {
    /// The human-readable message.
    pub fn message(&self) -> String {
        self.data
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| self.name.clone())
    }

    /// Whether it only says the session was aborted (by draftsmith's cancel or retry bound).
    pub fn is_abort(&self) -> bool {
        self.name == "MessageAbortedError"
    }
}

/// One part of a message: text, reasoning, tool, step-start, step-finish, …
#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    /// `prt_…`.
    pub id: String,
    /// Its message.
    #[serde(rename = "messageID")]
    pub message_id: String,
    /// Its session (read for routing; taken out of the part when it is).
    #[serde(rename = "sessionID", default)]
    pub session_id: Option<String>,
    /// The part type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Text and reasoning content.
    #[serde(default)]
    pub text: Option<String>,
    /// Added by OpenCode itself, not said by the model.
    #[serde(default)]
    pub synthetic: Option<bool>,
    /// Excluded from the conversation.
    #[serde(default)]
    pub ignored: Option<bool>,
    /// The tool's name.
    #[serde(default)]
    pub tool: Option<String>,
    /// The model's tool call id.
    #[serde(rename = "callID", default)]
    pub call_id: Option<String>,
    /// The tool call's state.
    #[serde(default)]
    pub state: Option<ToolState>,
    /// A text part's start, and its end once the part is whole (its last update).
    #[serde(default)]
    pub time: Option<Span>,
}

/// A tool call's state machine: pending → running → completed | error.
#[derive(Debug, Clone, Deserialize)]
pub struct ToolState {
    /// `pending`, `running`, `completed` or `error`.
    pub status: String,
    /// The arguments (empty while pending).
    #[serde(default)]
    pub input: Value,
    /// The result text.
    #[serde(default)]
    pub output: Option<String>,
    /// The failure text.
    #[serde(default)]
    pub error: Option<String>,
    /// Start and end (ms).
    #[serde(default)]
    pub time: Option<Span>,
}

/// When a tool call or a text part started and ended.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Span {
    /// Started (ms).
    #[serde(default)]
    pub start: Option<u64>,
    /// Ended (ms).
    #[serde(default)]
    pub end: Option<u64>,
}

/// `GET /session/{id}/message` item.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageWithParts {
    /// Metadata.
    pub info: MessageInfo,
    /// Parts in order.
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// A session's status.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SessionStatus {
    /// Nothing running.
    Idle,
    /// Working.
    Busy,
    /// Waiting to retry a failed model call.
    Retry {
        /// Attempt number.
        #[serde(default)]
        attempt: u64,
        /// The upstream error.
        #[serde(default)]
        message: String,
        /// When the next attempt starts (ms since the epoch).
        #[serde(default)]
        next: Option<u64>,
    },
}

/// A pending permission request.
#[derive(Debug, Clone, Deserialize)]
pub struct PermissionRequest {
    /// `per_…`.
    pub id: String,
    /// The asking session.
    #[serde(rename = "sessionID")]
    pub session_id: String,
    /// What is asked (`external_directory`, `edit`, …).
    #[serde(default)]
    pub permission: String,
}

/// One event of `/event`, reduced to what the engine acts on.
#[derive(Debug, Clone)]
pub enum Event {
    /// The stream is live (first event).
    Connected,
    /// A message was created or changed.
    MessageUpdated(MessageInfo),
    /// A part was created or changed (text parts carry their full text).
    PartUpdated(Part),
    /// Text appended to a part.
    PartDelta {
        /// Its message.
        message_id: String,
        /// The part.
        part_id: String,
        /// The field (`text`).
        field: String,
        /// The appended text.
        delta: String,
    },
    /// Busy, idle or retrying.
    Status(SessionStatus),
    /// The session finished working.
    Idle,
    /// The session failed.
    Error(Option<OpencodeError>),
    /// A tool waits for a permission answer.
    PermissionAsked(PermissionRequest),
    /// A session was created (subagents have a parent).
    SessionCreated(Session),
    /// Anything else.
    Other,
}

/// One event of the instance stream (`GET /event`): its properties are read only for
/// the types the engine acts on, straight into their types.
#[derive(Debug, Deserialize)]
struct InstanceEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow, default)]
    properties: Option<&'a RawValue>,
}

/// The properties the engine reads, whichever event carries them.
#[derive(Debug, Default, Deserialize)]
struct Properties {
    #[serde(rename = "sessionID", default)]
    session_id: Option<String>,
    #[serde(default)]
    info: Option<MessageInfo>,
    #[serde(default)]
    part: Option<Part>,
}

/// `message.part.delta`.
#[derive(Debug, Deserialize)]
struct DeltaProperties {
    #[serde(rename = "sessionID", default)]
    session_id: Option<String>,
    #[serde(rename = "messageID", default)]
    message_id: String,
    #[serde(rename = "partID", default)]
    part_id: String,
    #[serde(default)]
    field: String,
    #[serde(default)]
    delta: String,
}

/// `session.status`.
#[derive(Debug, Deserialize)]
struct StatusProperties {
    #[serde(rename = "sessionID", default)]
    session_id: Option<String>,
    status: SessionStatus,
}

/// `session.error`: an error that does not parse still ends the session.
#[derive(Debug, Deserialize)]
struct ErrorProperties<'a> {
    #[serde(rename = "sessionID", default)]
    session_id: Option<String>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// `session.created`.
#[derive(Debug, Deserialize)]
struct CreatedProperties {
    #[serde(rename = "sessionID", default)]
    session_id: Option<String>,
    info: Session,
}

/// Parses one SSE `data:` line: the session it concerns (when it names one) and the event.
/// Events of other types come back as [`Event::Other`] of no session, unread: they are
/// most of the stream (heartbeats, file and diff notices), and nobody is told of them.
pub fn parse_event(data: &str) -> Option<(Option<String>, Event)> {
    let raw: InstanceEvent<'_> = serde_json::from_str(data).ok()?;
    let props = raw.properties.map_or("null", RawValue::get);
    let read = |json: &str| serde_json::from_str::<Properties>(json).ok();
    let parsed = match raw.kind {
        "server.connected" => (None, Event::Connected),
        "message.updated" => {
            let props = read(props)?;
            let info = props.info?;
            let session = props.session_id.or_else(|| named(&info.session_id));
            (session, Event::MessageUpdated(info))
        }
        "message.part.updated" => {
            let props = read(props)?;
            let mut part = props.part?;
            let session = props.session_id.or(part.session_id.take());
            (session, Event::PartUpdated(part))
        }
        "message.part.delta" => {
            let props: DeltaProperties = serde_json::from_str(props).ok()?;
            let event = Event::PartDelta {
                message_id: props.message_id,
                part_id: props.part_id,
                field: props.field,
                delta: props.delta,
            };
            (props.session_id, event)
        }
        "session.status" => {
            let props: StatusProperties = serde_json::from_str(props).ok()?;
            (props.session_id, Event::Status(props.status))
        }
        "session.idle" => (read(props).and_then(|p| p.session_id), Event::Idle),
        "session.error" => {
            let props: ErrorProperties<'_> = serde_json::from_str(props).ok()?;
            let error = props
                .error
                .and_then(|error| serde_json::from_str(error.get()).ok());
            (props.session_id, Event::Error(error))
        }
        "permission.asked" => {
            let request: PermissionRequest = serde_json::from_str(props).ok()?;
            (
                Some(request.session_id.clone()),
                Event::PermissionAsked(request),
            )
        }
        "session.created" => {
            let props: CreatedProperties = serde_json::from_str(props).ok()?;
            (props.session_id, Event::SessionCreated(props.info))
        }
        _ => (None, Event::Other),
    };
    Some(parsed)
}

fn named(session: &str) -> Option<String> {
    (!session.is_empty()).then(|| session.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_events_the_engine_needs() {
        let delta = r#"{"id":"evt_1","type":"message.part.delta","properties":{"sessionID":"ses_1","messageID":"msg_1","partID":"prt_1","field":"text","delta":"Hi"}}"#;
        let (session, event) = parse_event(delta).unwrap();
        assert_eq!(session.as_deref(), Some("ses_1"));
        assert!(matches!(event, Event::PartDelta { ref delta, .. } if delta == "Hi"));
        let retry = r#"{"type":"session.status","properties":{"sessionID":"ses_1","status":{"type":"retry","attempt":2,"message":"boom","next":5}}}"#;
        let (_, event) = parse_event(retry).unwrap();
        assert!(
            matches!(event, Event::Status(SessionStatus::Retry { attempt: 2, ref message, .. }) if message == "boom")
        );
        let tool = r#"{"type":"message.part.updated","properties":{"sessionID":"ses_1","part":{"id":"prt_2","messageID":"msg_1","sessionID":"ses_1","type":"tool","tool":"write","callID":"c1","state":{"status":"pending","input":{},"raw":""}}}}"#;
        let (_, event) = parse_event(tool).unwrap();
        assert!(matches!(event, Event::PartUpdated(ref p) if p.call_id.as_deref() == Some("c1")));
        let other = r#"{"type":"plugin.added","properties":{"id":"x"}}"#;
        assert!(matches!(parse_event(other).unwrap().1, Event::Other));
        // What the engine does not act on names no session, so nobody is woken for it.
        let diff =
            r#"{"type":"session.diff","properties":{"sessionID":"ses_1","diff":[{"file":"a"}]}}"#;
        assert!(matches!(parse_event(diff).unwrap(), (None, Event::Other)));
        // The session comes from the part, or from the message's info.
        let part = r#"{"type":"message.part.updated","properties":{"part":{"id":"prt_3","messageID":"msg_1","sessionID":"ses_2","type":"text","text":"x"}}}"#;
        assert_eq!(parse_event(part).unwrap().0.as_deref(), Some("ses_2"));
        let info = r#"{"type":"message.updated","properties":{"info":{"id":"msg_1","sessionID":"ses_3","role":"assistant"}}}"#;
        let (session, event) = parse_event(info).unwrap();
        assert_eq!(session.as_deref(), Some("ses_3"));
        assert!(matches!(event, Event::MessageUpdated(ref m) if m.role == "assistant"));
        // An error that does not parse still ends the session; a malformed part is skipped.
        let error = r#"{"type":"session.error","properties":{"sessionID":"ses_1","error":"boom"}}"#;
        assert!(matches!(
            parse_event(error).unwrap(),
            (Some(_), Event::Error(None))
        ));
        let named = r#"{"type":"session.error","properties":{"error":{"name":"APIError","data":{"message":"m"}}}}"#;
        assert!(
            matches!(parse_event(named).unwrap().1, Event::Error(Some(ref e)) if e.message() == "m")
        );
        let broken = r#"{"type":"message.part.updated","properties":{"part":{"id":"prt_4"}}}"#;
        assert!(parse_event(broken).is_none());
        assert!(matches!(
            parse_event(r#"{"type":"session.idle","properties":{"sessionID":"ses_4"}}"#).unwrap(),
            (Some(ref s), Event::Idle) if s == "ses_4"
        ));
        // The global stream's envelope is not the instance stream's form.
        let global = r#"{"directory":"/w","payload":{"type":"session.idle","properties":{"sessionID":"ses_1"}}}"#;
        assert!(parse_event(global).is_none());
    }
}
