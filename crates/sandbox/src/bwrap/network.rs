//! The network part of a bubblewrap invocation: the host's, a fresh namespace, or the
//! sandbox's own persistent one, with its sockets, proxy variables and forwarders.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::push;
use crate::egress::NetNs;
use crate::egress::forward::{self, Forward};

/// Whether a sandbox shares the host's network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Network {
    /// The host's network (only for tests and benchmarks' baselines).
    #[default]
    Shared,
    /// A private network namespace with only loopback and no way out.
    Isolated,
    /// A private network namespace whose ways out are the Unix sockets in `sockets`,
    /// bound read-only at `/run/draftsmith`: the egress proxy's when `proxy` (then a
    /// forwarder exposes it on loopback and the proxy variables point at it), plus the
    /// `services` forwards of a long-lived service (the OpenCode server and its model gate).
    Private {
        /// The host directory of the sandbox's sockets.
        sockets: PathBuf,
        /// Whether the egress proxy is this sandbox's way out.
        proxy: bool,
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
        /// Whether the egress proxy is this sandbox's way out.
        proxy: bool,
        /// A service's own forwards.
        services: Vec<Forward>,
        /// The namespace.
        netns: Arc<NetNs>,
    },
}

impl Network {
    /// The `bwrap` arguments of this network: a new namespace, the sockets and the proxy
    /// variables.
    pub(super) fn args(&self, args: &mut Vec<OsString>) {
        let (sockets, proxy) = match self {
            Self::Shared => return,
            Self::Isolated => return args.push("--unshare-net".into()),
            Self::Private { sockets, proxy, .. } => {
                args.push("--unshare-net".into());
                (sockets, proxy)
            }
            Self::Joined { sockets, proxy, .. } => (sockets, proxy),
        };
        // bwrap would make the missing `/run` root's `0700`, closed to a sandbox uid.
        args.extend(["--perms", "0755", "--dir", "/run"].map(OsString::from));
        push(args, "--ro-bind", sockets, Path::new(forward::INSIDE_DIR));
        if *proxy {
            for (key, value) in forward::proxy_env() {
                args.extend([OsString::from("--setenv"), key.into(), value.into()]);
            }
        }
    }

    /// What runs before the command inside (`sh -c PRELUDE sh`): the forwarders a fresh
    /// namespace needs, or a service's own in the sandbox's namespace; nothing otherwise.
    pub fn command_prefix(&self) -> Vec<OsString> {
        let (proxy, services) = match self {
            Self::Private {
                proxy, services, ..
            } => (*proxy, services),
            Self::Joined { services, .. } if !services.is_empty() => (false, services),
            _ => return Vec::new(),
        };
        let mut forwards = services.clone();
        if proxy {
            forwards.insert(
                0,
                Forward::TcpToUnix {
                    port: forward::PROXY_PORT,
                    socket: forward::PROXY_SOCKET.into(),
                },
            );
        }
        forward::prelude(&forwards)
    }

    /// The namespace a process must join before it execs, for [`Network::Joined`].
    pub(crate) fn netns(&self) -> Option<Arc<NetNs>> {
        match self {
            Self::Joined { netns, .. } => Some(netns.clone()),
            _ => None,
        }
    }
}
