//! Behaviour of the sandbox controller with real processes, real bubblewrap and real HTTP.
//! `suite` runs against both deployments; the other modules test one side.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bwrap;
mod deps;
mod devserver;
mod egress;
mod remote;
mod restart;
mod rlimits;
mod spares;
mod suite;
mod support;
