//! The network a confined process gets: the host's, a fresh namespace, or the sandbox's
//! own persistent one, with its sockets and forwards (bubblewrap's arguments for it are
//! built in `bwrap::network`).

use std::path::PathBuf;
use std::sync::Arc;

use super::NetNs;
use super::forward::{Forward, ProxyEnv};

/// Whether a sandbox shares the host's network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Network {
    /// The host's network (only for tests and benchmarks' baselines).
    #[default]
    Shared,
    /// A private network namespace with only loopback and no way out.
    Isolated,
    /// A private network namespace whose ways out are the Unix sockets in `sockets`,
    /// bound read-only at `/run/draftsmith`: the egress proxy's when `proxy` is set (then a
    /// forwarder exposes it on loopback and its variables point at it), plus the
    /// `services` forwards of a long-lived service (the OpenCode server and its model gate).
    Private {
        /// The host directory of the sandbox's sockets.
        sockets: PathBuf,
        /// What its processes are told of the egress proxy, when that is its way out.
        proxy: Option<ProxyEnv>,
        /// A service's own forwards.
        services: Vec<Forward>,
    },
    /// The sandbox's own persistent network namespace, which the process joins before it
    /// execs ([`crate::enclosure::Enclosure`] does, with `netns`): the sockets bound as for
    /// `Private`, the proxy already listening on the namespace's loopback (the controller
    /// serves it), and only a service's own `services` forwards started by a prelude.
    Joined {
        /// The host directory of the sandbox's sockets.
        sockets: PathBuf,
        /// What its processes are told of the egress proxy, when that is its way out.
        proxy: Option<ProxyEnv>,
        /// A service's own forwards.
        services: Vec<Forward>,
        /// The namespace.
        netns: Arc<NetNs>,
    },
}
