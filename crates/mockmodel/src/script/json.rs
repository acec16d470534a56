//! The JSON forms of attempts, turns and steps: what may be written (a turn as an array, an
//! object or one inline attempt; a step as exactly one kind key) and the checks serde cannot
//! express, converted to and from the script's types.

use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Attempt, ErrorReply, Finish, Reply, Step, ToolCall, Turn, Usage};

impl Serialize for Attempt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawAttempt::from(self.clone()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Attempt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Attempt::try_from(RawAttempt::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawStep::from(self.clone()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Step::try_from(RawStep::deserialize(deserializer)?).map_err(de::Error::custom)
    }
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
