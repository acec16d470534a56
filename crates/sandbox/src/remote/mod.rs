//! The remote deployment: [`controller_router`] serves a controller over the internal HTTP
//! API `/internal/sandbox-controller/…` (shared-secret bearer auth) and [`RemoteController`]
//! implements [`crate::SandboxController`] by calling it.

mod auth;
mod client;
mod execs;
mod failure;
mod router;
mod wire;

pub use client::RemoteController;
pub use router::controller_router;

/// Every route lives under this prefix.
pub(crate) const PREFIX: &str = "/internal/sandbox-controller";
