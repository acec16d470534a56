//! Content addressing: a blob is named by the SHA-256 of its bytes, so equal files are
//! stored once however many revisions hold them.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Lower-case hex SHA-256 of a blob's content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct BlobHash(String);

impl BlobHash {
    /// Hashes `content`.
    pub fn of(content: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(content)))
    }

    /// Accepts a stored hash; `None` unless it is 64 lower-case hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Self(s.to_owned()))
    }

    /// The hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_hex() {
        let h = BlobHash::of(b"abc");
        assert_eq!(
            h.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(BlobHash::parse(h.as_str()), Some(h));
        assert_eq!(BlobHash::parse("ABC"), None);
    }
}
