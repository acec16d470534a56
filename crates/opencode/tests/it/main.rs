//! Behaviour of the OpenCode engine against the real `opencode serve` (installed by
//! `scripts/install-opencode`; these tests fail without it) and the scripted model server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cancel;
mod edit_failures;
mod edit_run;
mod fidelity;
mod gate;
mod lifecycle;
mod polling;
mod retries;
mod seeding;
mod servers;
mod support;
mod usage;
mod version;
