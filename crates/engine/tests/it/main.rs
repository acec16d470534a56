//! Integration tests for the model providers, against a local axum server that replays
//! canned SSE bodies from `tests/fixtures/` and records what it was sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anthropic;
mod attachments;
mod context;
mod native;
mod openai;
mod support;
