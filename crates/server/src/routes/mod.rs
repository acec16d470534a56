//! One module per resource; each exports `router()` and the top merges them.

pub mod admin;
pub mod agents;
pub mod app_events;
pub mod apps;
pub mod chat;
pub mod checkpoints;
pub mod drafts;
pub mod health;
pub mod metrics;
pub mod preview;
pub mod published;
pub mod queue;
pub mod releases;
pub mod runs;
pub mod session;
pub mod steering;
pub mod stream;
pub mod templates;
pub mod uploads;
pub mod usage;
pub mod web;
