//! The store's own rules, each test run on SQLite and on PostgreSQL (a database created for
//! the test and dropped after it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod auth;
mod chat;
mod checkpoints;
mod drafts;
mod landing;
mod queue;
mod releases;
mod resources;
mod runs;
mod steering;
