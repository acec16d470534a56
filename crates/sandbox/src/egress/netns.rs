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

    /// A listener on `127.0.0.1:port` inside the namespace (non-blocking), served from the
    /// host: what reaches it comes from the sandbox's own processes only.
    pub(crate) fn listen_loopback(&self, port: u16) -> io::Result<TcpListener> {
        self.0.run_inside(move || {
            let listener = TcpListener::bind(("127.0.0.1", port))?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        })
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

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_loopback_listener_is_bound_inside_its_namespace() {
        if !draftsmith_process::is_root() {
            return;
        }
        let (ns, _) = NetNs::create(false).unwrap();
        let (other, _) = NetNs::create(false).unwrap();
        let port = crate::egress::forward::GATE_PORT;
        // One port on each loopback: they are two.
        let own = ns.listen_loopback(port).unwrap();
        let theirs = other.listen_loopback(port).unwrap();
        assert!(ns.listen_loopback(port).is_err(), "the port is taken there");
        // A connection made inside the namespace reaches its listener, not the other's.
        let _client =
            ns.0.run_inside(move || std::net::TcpStream::connect(("127.0.0.1", port)))
                .unwrap();
        let mut accepted = None;
        for _ in 0..100 {
            if let Ok((stream, _)) = own.accept() {
                accepted = Some(stream);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(accepted.is_some(), "the namespace's listener took it");
        assert!(theirs.accept().is_err(), "the other namespace saw nothing");
    }
}
