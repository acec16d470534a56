//! The OpenCode engine (SPEC §5): drives a real `opencode serve` — one per workspace,
//! started with a private HOME, a generated configuration and a password, optionally under
//! a confinement wrapper — over its HTTP API, and translates its session events into
//! draftsmith's run events.
//!
//! Entry points: [`OpencodeEngine`] (the [`draftsmith_engine::Engine`]), [`OpencodeConfig`],
//! [`find_binary`] (for capabilities to report a missing install) and [`policy`].

mod binary;
mod client;
mod config;
mod engine;
mod gate;
mod output;
mod policy;
mod prompt;
mod run;
mod seed;
mod server;
mod settings;
mod stream;
mod translate;
mod version;
mod wire;

pub use binary::{
    INSTALL_HINT, MissingBinary, PINNED_RELATIVE_PATH, find_binary, install_dir, pinned_version,
};
pub use client::{ClientError, OpencodeClient};
pub use config::{
    CommandHook, ExternalServer, Faults, GateEndpoint, Launch, LaunchFn, LaunchNetwork,
    OpencodeConfig, ServerPolicy,
};
pub use draftsmith_process::{descendants, is_running};
pub use engine::{OpencodeEngine, RunTimings};
pub use gate::{Health, ModelGate, PLACEHOLDER_KEY, Route, UpstreamHealth};
pub use policy::{DELEGATED_TOOLS, OpencodePolicyInfo, PERMISSION_MODEL, policy};
pub use seed::{
    CONTRACT_PATH, PROJECT_CUSTOM_TOOLS, SeedError, empty_contract, project_files, seed_project,
    seed_workspace,
};
pub use server::{OpencodeServer, ServerOptions, StartError};
pub use settings::{
    DISABLED_TOOLS, OpencodeSettings, PermissionAction, PermissionRule, Permissions,
    default_permissions,
};
pub use version::{BinaryError, binary_version, check_version, resolve_binary};
