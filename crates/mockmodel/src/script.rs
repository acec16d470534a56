//! The script: which scenario answers a request, and what each turn of it says.
//!
//! The JSON format is documented in `docs/mock-model.md`; the types here mirror it one to one.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawAttempt", into = "RawAttempt")]
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
}

/// One thing that happens in a reply's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawStep", into = "RawStep")]
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

/// The JSON form of an attempt: either the reply fields or a lone `error`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttempt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    steps: Option<Vec<Step>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    finish: Option<Finish>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<ErrorReply>,
}

impl TryFrom<RawAttempt> for Attempt {
    type Error = String;

    fn try_from(raw: RawAttempt) -> Result<Self, String> {
        match raw.error {
            Some(error) => {
                if raw.steps.is_some() || raw.finish.is_some() || raw.usage.is_some() {
                    return Err("an error attempt takes no `steps`, `finish` or `usage`".into());
                }
                if !(400..=599).contains(&error.status) {
                    return Err(format!("error status {} is not in 400..=599", error.status));
                }
                Ok(Attempt::Error(error))
            }
            None => Ok(Attempt::Reply(Reply {
                steps: raw.steps.unwrap_or_default(),
                finish: raw.finish,
                usage: raw.usage,
            })),
        }
    }
}

impl From<Attempt> for RawAttempt {
    fn from(attempt: Attempt) -> Self {
        match attempt {
            Attempt::Reply(reply) => RawAttempt {
                steps: Some(reply.steps),
                finish: reply.finish,
                usage: reply.usage,
                error: None,
            },
            Attempt::Error(error) => RawAttempt {
                error: Some(error),
                ..RawAttempt::default()
            },
        }
    }
}

/// The JSON object form of a turn: `attempts`, or the fields of one inline attempt.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTurn {
    #[serde(default)]
    attempts: Option<Vec<Attempt>>,
    #[serde(default)]
    steps: Option<Vec<Step>>,
    #[serde(default)]
    finish: Option<Finish>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<ErrorReply>,
}

impl<'de> Deserialize<'de> for Turn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TurnVisitor;

        impl<'de> Visitor<'de> for TurnVisitor {
            type Value = Turn;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of attempts, {\"attempts\": [...]}, or one attempt object")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Turn, A::Error> {
                let attempts = Vec::<Attempt>::deserialize(SeqAccessDeserializer::new(seq))?;
                if attempts.is_empty() {
                    return Err(de::Error::custom("a turn needs at least one attempt"));
                }
                Ok(Turn { attempts })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Turn, A::Error> {
                let raw = RawTurn::deserialize(MapAccessDeserializer::new(map))?;
                if let Some(attempts) = raw.attempts {
                    if raw.steps.is_some()
                        || raw.finish.is_some()
                        || raw.usage.is_some()
                        || raw.error.is_some()
                    {
                        return Err(de::Error::custom(
                            "a turn has either `attempts` or the fields of one attempt, not both",
                        ));
                    }
                    if attempts.is_empty() {
                        return Err(de::Error::custom("a turn needs at least one attempt"));
                    }
                    return Ok(Turn { attempts });
                }
                let attempt = Attempt::try_from(RawAttempt {
                    steps: raw.steps,
                    finish: raw.finish,
                    usage: raw.usage,
                    error: raw.error,
                })
                .map_err(de::Error::custom)?;
                Ok(Turn {
                    attempts: vec![attempt],
                })
            }
        }

        deserializer.deserialize_any(TurnVisitor)
    }
}

/// The JSON form of a step: exactly one of the kind keys, plus its options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chunk: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redacted_thinking: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_call: Option<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cut: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    malformed: Option<String>,
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(raw: RawStep) -> Result<Self, Self::Error> {
        let kinds = [
            raw.text.is_some(),
            raw.reasoning.is_some(),
            raw.redacted_thinking.is_some(),
            raw.tool_call.is_some(),
            raw.delay_ms.is_some(),
            raw.cut.is_some(),
            raw.malformed.is_some(),
        ];
        let count = kinds.iter().filter(|k| **k).count();
        if count != 1 {
            return Err(format!(
                "a step has exactly one of `text`, `reasoning`, `redacted_thinking`, `tool_call`, `delay_ms`, `cut`, `malformed` (found {count})"
            ));
        }
        if raw.chunk.is_some() && raw.text.is_none() && raw.reasoning.is_none() {
            return Err("`chunk` applies only to `text` and `reasoning` steps".into());
        }
        if raw.chunk == Some(0) {
            return Err("`chunk` must be at least 1".into());
        }
        if let Some(text) = raw.text {
            return Ok(Step::Text {
                text,
                chunk: raw.chunk,
            });
        }
        if let Some(text) = raw.reasoning {
            return Ok(Step::Reasoning {
                text,
                chunk: raw.chunk,
            });
        }
        if let Some(data) = raw.redacted_thinking {
            return Ok(Step::RedactedThinking(data));
        }
        if let Some(call) = raw.tool_call {
            if call.split == Some(0) {
                return Err("`split` must be at least 1".into());
            }
            return Ok(Step::ToolCall(call));
        }
        if let Some(ms) = raw.delay_ms {
            return Ok(Step::Delay { ms });
        }
        if let Some(cut) = raw.cut {
            if !cut {
                return Err("`cut` must be true".into());
            }
            return Ok(Step::Cut);
        }
        match raw.malformed {
            Some(raw) => Ok(Step::Malformed(raw)),
            None => Err("empty step".into()),
        }
    }
}

impl From<Step> for RawStep {
    fn from(step: Step) -> Self {
        match step {
            Step::Text { text, chunk } => RawStep {
                text: Some(text),
                chunk,
                ..RawStep::default()
            },
            Step::Reasoning { text, chunk } => RawStep {
                reasoning: Some(text),
                chunk,
                ..RawStep::default()
            },
            Step::RedactedThinking(data) => RawStep {
                redacted_thinking: Some(data),
                ..RawStep::default()
            },
            Step::ToolCall(call) => RawStep {
                tool_call: Some(call),
                ..RawStep::default()
            },
            Step::Delay { ms } => RawStep {
                delay_ms: Some(ms),
                ..RawStep::default()
            },
            Step::Cut => RawStep {
                cut: Some(true),
                ..RawStep::default()
            },
            Step::Malformed(raw) => RawStep {
                malformed: Some(raw),
                ..RawStep::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn shorthand_array_and_object_turns() {
        let script = Script::from_json(
            r#"{
              "chunk_delay_ms": 5,
              "scenarios": [{
                "name": "s",
                "match": {"contains": "hello"},
                "turns": [
                  {"steps": [{"text": "hi", "chunk": 1}], "finish": "length", "usage": {"input_tokens": 3}},
                  [{"error": {"status": 429, "retry_after": 2}}, {"steps": []}],
                  {"attempts": [{"steps": [{"tool_call": {"name": "write", "arguments": "{bad", "split": 2}}]}]},
                  {}
                ]
              }]
            }"#,
        )
        .unwrap();
        assert_eq!(script.chunk_delay_ms, 5);
        let turns = &script.scenarios[0].turns;
        assert_eq!(turns.len(), 4);
        assert_eq!(
            turns[0].attempts,
            vec![Attempt::Reply(Reply {
                steps: vec![Step::Text {
                    text: "hi".into(),
                    chunk: Some(1)
                }],
                finish: Some(Finish::Length),
                usage: Some(Usage {
                    input_tokens: Some(3),
                    ..Usage::default()
                }),
            })]
        );
        assert_eq!(turns[1].attempts.len(), 2);
        match &turns[1].attempts[0] {
            Attempt::Error(e) => {
                assert_eq!(e.status, 429);
                assert_eq!(e.retry_after, Some(2));
                assert_eq!(e.message, "mock-model scripted error");
            }
            other => panic!("unexpected {other:?}"),
        }
        match &turns[2].attempts[0] {
            Attempt::Reply(r) => match &r.steps[0] {
                Step::ToolCall(call) => assert_eq!(call.arguments_text(), "{bad"),
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(turns[3].attempts, vec![Attempt::Reply(Reply::default())]);
    }

    #[test]
    fn round_trips_through_serialize() {
        let text = r#"{"scenarios":[{"name":"a","turns":[
            {"steps":[{"reasoning":"r","chunk":2},{"redacted_thinking":"x"},{"delay_ms":3},{"cut":true},{"malformed":"x"},
                      {"tool_call":{"id":"c","name":"n","arguments":{"a":1},"split":3}}]},
            {"error":{"status":500,"message":"boom","type":"api_error"}}]}]}"#;
        let script = Script::from_json(text).unwrap();
        let again = Script::from_json(&serde_json::to_string(&script).unwrap()).unwrap();
        assert_eq!(script, again);
    }

    #[test]
    fn errors_name_the_path() {
        let err = Script::from_json(
            r#"{"scenarios":[{"name":"a","turns":[{"steps":[{"text":"x","bogus":1}]}]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("scenarios[0].turns[0]"), "{err}");
        assert!(err.contains("bogus"), "{err}");

        let err = Script::from_json(
            r#"{"scenarios":[{"name":"a","turns":[{"steps":[{"text":"x","delay_ms":1}]}]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("exactly one"), "{err}");

        let err = Script::from_json(r#"{"scenarios":[{"name":"a","turns":[[]]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least one attempt"), "{err}");

        let err = Script::from_json(r#"{"scenarios":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least one scenario"), "{err}");

        let err =
            Script::from_json(r#"{"scenarios":[{"name":"a","turns":[{"error":{"status":200}}]}]}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("400..=599"), "{err}");

        assert!(Script::from_json(r#"{"scenarios":[{"name":"a","turns":[]}]} x"#).is_err());
        assert!(Script::from_json(r#"{"scenarios":[{"name":"a","turns":[]}],"x":1}"#).is_err());
    }

    #[test]
    fn from_file_reports_missing_file() {
        let err = Script::from_file("/nonexistent/script.json").unwrap_err();
        assert!(matches!(err, ScriptError::Read { .. }));
    }
}
