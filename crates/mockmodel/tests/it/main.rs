//! Integration tests: the mock model over real HTTP, as a client sees it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anthropic;
mod caching;
mod control;
mod faults;
mod openai;
mod support;
mod turns;
