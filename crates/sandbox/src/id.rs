//! The sandbox identifier: it names a directory and a URL segment, so only a safe alphabet
//! is accepted.

use serde::{Deserialize, Deserializer, Serialize};

use draftsmith_core::ChatSessionId;

use crate::error::SandboxError;

/// Longest accepted identifier.
const MAX_LEN: usize = 80;

/// Names one sandbox, e.g. `chat-<uuid>`; `[a-zA-Z0-9_-]{1,80}` so it is a safe file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SandboxId(String);

impl SandboxId {
    /// Validates `raw`; the only way to build an id, so every id is a safe path segment.
    pub fn parse(raw: &str) -> Result<Self, SandboxError> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(SandboxError::InvalidId(raw.chars().take(100).collect()))
        }
    }

    /// The chat-scoped id of SPEC §6, so every caller spells it the same way. Infallible:
    /// `chat-` and a hyphenated UUID (41 characters) are always in the safe alphabet.
    pub fn for_chat(chat_session_id: ChatSessionId) -> Self {
        Self(format!("chat-{chat_session_id}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SandboxId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SandboxId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_safe_alphabet() {
        assert!(SandboxId::parse("chat-0b6f_x").is_ok());
        assert!(SandboxId::parse(&"a".repeat(80)).is_ok());
        for bad in ["", "a/b", "..", ".trash", "a b", "é", &"a".repeat(81)] {
            assert!(SandboxId::parse(bad).is_err(), "{bad}");
        }
        let chat = "123e4567-e89b-12d3-a456-426614174000"
            .parse::<ChatSessionId>()
            .map(SandboxId::for_chat);
        assert_eq!(
            chat.as_ref().map(SandboxId::as_str).ok(),
            Some("chat-123e4567-e89b-12d3-a456-426614174000")
        );
        let any = SandboxId::for_chat(ChatSessionId::new());
        assert_eq!(SandboxId::parse(any.as_str()).ok(), Some(any));
    }
}
