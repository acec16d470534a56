//! The supervisor's own tests: real processes, real signals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod child;
mod run;
mod support;
mod tail;
mod tree;
