//! A sandbox's one persistent network namespace. The controller makes it once (a
//! [`NetNamespace`]: a short-lived thread `unshare`s its own network namespace, brings
//! loopback up and, with the proxy, binds the egress listener `127.0.0.1:3128` inside it)
//! and keeps it open by a file descriptor: every confined process of the sandbox joins it
//! with `setns` right before it execs (see [`crate::enclosure::Enclosure`]), so nothing has
//! to start per command, and a dev server one command starts is reachable from the next on
//! loopback. Its last reference goes when the sandbox stops (the descriptor is closed,
//! every process in it is killed), or when the service itself goes: a descriptor dies with
//! its process.

use std::io;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use draftsmith_process::NetNamespace;

use super::forward::PROXY_PORT;

/// An open network namespace of one sandbox.
#[derive(Debug)]
pub struct NetNs(NetNamespace);

impl NetNs {
    /// A new namespace with loopback up and, when `listen`, a listener on its
    /// `127.0.0.1:3128` (the sandbox's proxy port). Needs `CAP_SYS_ADMIN` (a root service).
    pub(crate) fn create(listen: bool) -> io::Result<(Self, Option<TcpListener>)> {
        let (namespace, listener) = NetNamespace::create(move || {
            if !listen {
                return Ok(None);
            }
            let listener = TcpListener::bind(("127.0.0.1", PROXY_PORT))?;
            listener.set_nonblocking(true)?;
            Ok(Some(listener))
        })?;
        Ok((Self(namespace), listener))
    }

    /// The descriptor a child `setns`es into.
    pub(crate) fn fd(&self) -> Arc<OwnedFd> {
        self.0.fd.clone()
    }

    /// The namespace's inode (as in `/proc/<pid>/ns/net` → `net:[inode]`).
    pub fn inode(&self) -> u64 {
        self.0.inode
    }
}

impl PartialEq for NetNs {
    fn eq(&self, other: &Self) -> bool {
        self.inode() == other.inode()
    }
}

impl Eq for NetNs {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_has_its_own_proxy_listener() {
        if !draftsmith_process::is_root() {
            return;
        }
        let Ok((ns, Some(listener))) = NetNs::create(true) else {
            panic!("cannot make a network namespace as root");
        };
        let Ok((other, None)) = NetNs::create(false) else {
            panic!("cannot make a second one");
        };
        assert_ne!(ns.inode(), other.inode());
        assert_eq!(
            listener.local_addr().map(|a| a.port()).ok(),
            Some(PROXY_PORT)
        );
    }
}
