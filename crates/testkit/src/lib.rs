//! Test support shared by every integration test: throwaway databases of both kinds, the
//! server started in-process or as a real process, and a typed client whose every call
//! states the status it expects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod client;
pub mod db;
pub mod process;
pub mod proxy;
pub mod server;
pub mod sse;

pub use browser::Browser;
pub use client::ApiClient;
pub use db::{StoreKind, TestDb};
pub use process::ServerProcess;
pub use server::TestServer;

/// The admin token every test server accepts.
pub const ADMIN_TOKEN: &str = "ds_test_admin_token";
