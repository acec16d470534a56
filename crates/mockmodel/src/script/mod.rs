//! The script: which scenario answers a request, and what each turn of it says.
//!
//! The JSON format is documented in `docs/mock-model.md`; the types here mirror it one to one,
//! and `json` holds the written forms they are read from (shorthand turns, one-key steps).

mod json;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a script could not be loaded, so the CLI and tests can say what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The script file could not be read.
    #[error("cannot read script {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a valid script; the message names the JSON path of the fault.
    #[error("invalid script: {0}")]
    Invalid(String),
}

/// A whole script: the scenarios a mock model plays, tried in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Pause in milliseconds between every SSE event, to mimic a model's pacing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chunk_delay_ms: u64,
    /// The model's context window in tokens: a request whose estimated input (body bytes / 4)
    /// plus its `max_tokens` exceeds it is refused with HTTP 400 and counted as a violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// The candidates; the first whose `match` fits a request answers it.
    pub scenarios: Vec<Scenario>,
}

/// One conversation shape, chosen by what the request says, with its turns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in recorded requests and logs.
    pub name: String,
    /// When this scenario applies; `None` matches every request.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<Match>,
    /// Turn `i` answers a request that already holds `i` assistant messages.
    pub turns: Vec<Turn>,
    /// Turn `i` answers instead the `i`-th request this scenario gets, whatever the request
    /// holds: for one conversation whose earlier messages the client compacts away.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sequential: bool,
}

/// A condition on the request's system prompt plus all its user text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Case-sensitive substring that must occur in the system prompt or any user message.
    pub contains: String,
}

/// One turn of a scenario: the attempts played to successive requests for it.
///
/// In JSON a turn is an array of attempts, an object `{"attempts": [...]}`, or (shorthand) a
/// single attempt written inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Turn {
    /// Attempt `k` answers the `k`-th request for this turn; the last one repeats.
    pub attempts: Vec<Attempt>,
}

/// What one request gets: a reply or a scripted HTTP error.
///
/// In JSON: the reply's fields, or a lone `error` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A (possibly streamed) assistant message.
    Reply(Reply),
    /// An HTTP error in the provider's error shape, to exercise retries.
    Error(ErrorReply),
}

/// An assistant message, described as the steps of its stream.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// What is sent, in order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// The finish reason; `None` means `tool_calls` if a tool call was sent, else `stop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<Finish>,
    /// Token counts to report; missing counts are estimated from the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// A scripted HTTP error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorReply {
    /// HTTP status, 400 to 599 (e.g. 429, 500, 529).
    pub status: u16,
    /// The error message placed in the provider's error body.
    #[serde(default = "default_error_message")]
    pub message: String,
    /// Seconds sent in a `retry-after` header, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Overrides the provider error `type` (default derived from the status).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// Why the model stopped, in OpenAI terms (mapped to Anthropic stop reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// Natural end of the message (`end_turn` for Anthropic).
    Stop,
    /// The model wants tools run (`tool_use` for Anthropic).
    ToolCalls,
    /// The output hit the token limit (`max_tokens` for Anthropic).
    Length,
}

/// Token counts reported to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Prompt tokens; estimated from the request size when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Completion tokens; estimated from the reply size when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Input read from the prompt cache; simulated from the request's cache markers when
    /// absent (Anthropic) or from repeated prefixes (OpenAI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Input written to the prompt cache (Anthropic); simulated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Report no usage at all (OpenAI: no usage chunk, `usage: null` in a whole body), as
    /// some compatible servers do; the other counts are then ignored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub omitted: bool,
}

/// One thing that happens in a reply's stream.
///
/// In JSON: an object with exactly one kind key (`text`, `reasoning`, `redacted_thinking`,
/// `tool_call`, `delay_ms`, `cut`, `malformed`) and that kind's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Assistant text, sent as deltas of `chunk` characters (whole when `None`).
    Text {
        /// The text.
        text: String,
        /// Characters per delta.
        chunk: Option<usize>,
    },
    /// Reasoning text (`reasoning_content` / `thinking`), sent as deltas of `chunk` characters.
    Reasoning {
        /// The reasoning.
        text: String,
        /// Characters per delta.
        chunk: Option<usize>,
    },
    /// An encrypted thinking block (Anthropic `redacted_thinking`) wrapping this payload;
    /// nothing in the OpenAI dialect.
    RedactedThinking(String),
    /// A tool call; several in one reply are parallel calls with indexes 0, 1, ….
    ToolCall(ToolCall),
    /// A pause in the stream.
    Delay {
        /// Milliseconds to wait.
        ms: u64,
    },
    /// Drop the connection at once: no finish reason, no `[DONE]`, no `message_stop`.
    Cut,
    /// A data line that is not valid JSON.
    Malformed(String),
}

/// A scripted tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// Call id; generated (`call_mock_N` / `toolu_mock_N`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Tool name.
    pub name: String,
    /// Arguments: any JSON value is serialized compactly; a JSON string is sent verbatim
    /// (so it can be malformed JSON).
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// Number of fragments the arguments string is cut into (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<usize>,
}

impl ToolCall {
    /// The arguments exactly as they go on the wire.
    pub fn arguments_text(&self) -> String {
        match &self.arguments {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        }
    }
}

impl Script {
    /// Parses and validates a script, naming the JSON path of any fault.
    pub fn from_json(text: &str) -> Result<Script, ScriptError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let script: Script = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            if path == "." || path.is_empty() {
                ScriptError::Invalid(e.inner().to_string())
            } else {
                ScriptError::Invalid(format!("{path}: {}", e.inner()))
            }
        })?;
        de.end().map_err(|e| ScriptError::Invalid(e.to_string()))?;
        script.validate()?;
        Ok(script)
    }

    /// Reads a script file, for `draftsmith mock-model --script FILE`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Script, ScriptError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Script::from_json(&text)
    }

    /// Checks what serde cannot: a script needs scenarios, and every turn needs an attempt.
    pub fn validate(&self) -> Result<(), ScriptError> {
        if self.scenarios.is_empty() {
            return Err(ScriptError::Invalid(
                "scenarios: a script needs at least one scenario".into(),
            ));
        }
        for (s, scenario) in self.scenarios.iter().enumerate() {
            for (t, turn) in scenario.turns.iter().enumerate() {
                if turn.attempts.is_empty() {
                    return Err(ScriptError::Invalid(format!(
                        "scenarios[{s}].turns[{t}]: a turn needs at least one attempt"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

fn default_error_message() -> String {
    "mock-model scripted error".to_owned()
}
