//! The network part of a bubblewrap invocation: the host's, a fresh namespace, or the
//! sandbox's own persistent one, with its sockets, proxy variables and forwarders.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use super::push;
use crate::egress::forward::{self, Forward};
use crate::egress::{NetNs, Network};

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
        if let Some(proxy) = proxy {
            for (key, value) in proxy.vars() {
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
            } => (proxy.is_some(), services),
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
