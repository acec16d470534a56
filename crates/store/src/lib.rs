//! Durable state behind one interface, [`Store`], implemented once in SQL over SQLite (the
//! embedded default) and PostgreSQL (several instances sharing one database). Blobs sit
//! behind their own [`BlobStore`] so an object store can replace the database table.
//!
//! `Store` is the sum of one trait per aggregate, each in its own module: [`AuthStore`]
//! (tokens, browser sessions), [`AppStore`] (apps and their drafts), [`RunStore`] (runs,
//! their event logs, landing), [`ChatStore`], [`CheckpointStore`] (and restore),
//! [`ResourceStore`] (agents and tools), [`ReleaseStore`] (releases, publications),
//! [`UsageStore`] (model calls, their tokens and cost), [`QueueStore`] (the apps' prompt
//! queues) and [`UploadStore`] (files attached to prompts).
//! Modules only import downwards, towards the leaves `writer` (where writes go, the
//! transaction), `sql` (statements, decoding of column values) and `rules` (active
//! statuses, the event → status mapping); this file only re-exports.

mod app_log;
mod apps;
mod auth;
mod blobs;
mod chat;
mod checkpoint_log;
mod checkpoints;
mod db;
mod draft_writes;
mod drafts;
mod error;
mod landing;
mod manifests;
pub mod prelude;
mod queue;
mod queue_rows;
mod releases;
mod resources;
mod restore;
mod rules;
mod run_log;
mod run_rows;
mod run_start;
mod runs;
mod sql;
mod steering;
mod store;
mod uploads;
mod usage;
mod usage_columns;
mod writer;

pub use apps::{AppStore, NewApp};
pub use auth::{AuthStore, Principal};
pub use blobs::{BlobStore, DbBlobs};
pub use chat::{ChatStore, ChatSummary};
pub use checkpoint_log::{DetachedChange, NewCheckpoint};
pub use checkpoints::{CheckpointStore, diff_manifests};
pub use db::{Backend, SqlStore};
pub use drafts::{DraftWrite, FileChange, Manifest};
pub use error::{Result, StoreError};
pub use landing::{Landed, Landing};
pub use queue::{NewQueued, NextRun, QueueStore, QueueTarget};
pub use releases::{Encoded, NewRelease, PublicationRecord, ReleaseStore, StoredReleaseFile};
pub use resources::{ResourceStore, StoredResource};
pub use run_log::RUN_EVENTS_CHANNEL;
pub use run_start::NewRun;
pub use runs::{RunStore, UserActivity};
pub use steering::{Steer, SteeringStore};
pub use store::Store;
pub use uploads::{NewUpload, UploadStore};
pub use usage::{NewModelCall, UsageFilter, UsageStore};
