//! Sandboxes (SPEC §6): a workspace materialised from a draft plus the processes working in
//! it, owned by a [`SandboxController`] that runs in-process ([`LocalController`]) or behind
//! an internal HTTP API ([`controller_router`] served, [`RemoteController`] calling it).
//! Every process a sandbox starts runs in its own process group and, where bubblewrap works,
//! confined by it.

mod bwrap;
mod controller;
mod deps;
mod devserver;
mod egress;
mod enclosure;
mod error;
mod id;
mod identity;
mod isolation;
mod limits;
mod local;
mod process;
mod reaper;
mod remote;
mod workspace;

pub use bwrap::{BwrapCommandRunner, BwrapProfile, Network};
pub use controller::{
    BlobSource, Change, Created, ExecRequest, FileEntry, Refreshed, SandboxController,
};
pub use devserver::{
    DevEndpoint, DevServerSpec, DevServerState, DevServerStatus, HMR_PATH, LIVE_BASE,
};
pub use egress::forward::{Forward, GATE_PORT, INSIDE_DIR, PROXY_PORT, ProxyEnv, SERVICE_PORT};
pub use egress::{
    ALLOW_SETTING, AddressClass, AllowList, DEFAULT_REGISTRY_HOST, EgressPolicy, EgressProxy,
    NetNs, NpmRegistry, Refusal, check_host, forbidden_class, pick_address,
};
pub use enclosure::Enclosure;
pub use error::SandboxError;
pub use id::SandboxId;
pub use identity::IdentityConfig;
pub use isolation::{Isolation, IsolationMode, find_program};
pub use limits::{Limits, LimitsMechanism, LimitsReport, Mechanism};
pub use local::{LocalController, ServiceGate, ServiceLaunch, ServiceNetwork, SpareTemplate};
pub use process::{ProcessGroups, SANDBOX_PATH, UnconfinedCommandRunner};
pub use reaper::spawn_reaper;
pub use remote::{RemoteController, controller_router};

/// Result of a sandbox operation.
pub type Result<T, E = SandboxError> = std::result::Result<T, E>;
