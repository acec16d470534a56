//! What the server remembers of each request, so tests can assert on what a client sent.

use serde::{Deserialize, Serialize};

/// One request the server received, so tests can assert on what the service sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The parsed JSON body (the raw text as a JSON string if it was not JSON).
    pub body: serde_json::Value,
    /// Name of the scenario chosen; empty when none was (no match, invariant violation).
    pub scenario: String,
    /// Turn index chosen: the number of assistant messages in the request.
    pub turn: usize,
    /// Which request for this (scenario, turn) this was, counting from 0.
    pub attempt: usize,
    /// The API key it carried (`Authorization: Bearer …` or `x-api-key`), if any.
    #[serde(default)]
    pub credential: Option<String>,
    /// The token counts the answer reported, once it was planned (none for errors).
    #[serde(default)]
    pub usage: Option<ReportedUsage>,
}

/// The usage a reply reported, normalised like the engine's: `input_tokens` is the input at
/// the full rate, cache reads and writes apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedUsage {
    /// Input at the full rate.
    pub input_tokens: u64,
    /// Output.
    pub output_tokens: u64,
    /// Input read from the simulated prompt cache.
    pub cache_read_tokens: u64,
    /// Input written to it.
    pub cache_write_tokens: u64,
}
