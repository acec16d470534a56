//! End-to-end tests over real HTTP, against both stores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

pub use draftsmith_testkit::both_stores;

mod agents;
mod api_contract;
mod app_events;
mod apps;
mod attachments;
mod auth;
mod boundary;
mod budgets;
mod checkpoints;
mod cli_run;
mod config;
mod drafts;
mod edge;
mod egress;
mod fair_use;
mod hardening;
mod history;
mod instances;
mod landing;
mod live;
mod metrics;
mod opencode;
mod processes;
mod publish;
mod queue;
mod runs;
mod sandboxes;
mod steering;
mod sync;
mod ui;
mod usage;
mod validation;
mod verification;
mod web;
