//! A sandbox's private network: one network namespace per sandbox ([`NetNs`], made on
//! first use, also for a sandbox adopted after a restart, and closed when it stops) that
//! every confined process of the sandbox joins, the directory of its sockets
//! (`<sandbox>/net`, bound read-only at `/run/draftsmith`) and its egress proxy, serving
//! that socket and the namespace's `127.0.0.1:3128`. A service that cannot make network
//! namespaces itself (not root) falls back to a fresh namespace per process, with
//! forwarders started inside each ([`Network::Private`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::LocalController;
use crate::bwrap::Network;
use crate::egress::forward::{Forward, GATE_PORT};
use crate::egress::{EgressPolicy, EgressProxy, NetNs, sockets_dir};
use crate::error::SandboxError;
use crate::id::SandboxId;

/// Longest Unix socket path (`sun_path` holds 108 bytes with its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// What one sandbox's network holds on the host.
#[derive(Debug, Default)]
pub(super) struct SandboxNet {
    /// Its egress proxy (with `egress = "proxy"`).
    proxy: Option<EgressProxy>,
    /// Its namespace (when the service can make one).
    netns: Option<Arc<NetNs>>,
    /// The namespace's proxy listener, kept to hand to a restarted proxy.
    loopback: Option<std::net::TcpListener>,
    /// The namespace's model-gate listener (`127.0.0.1:3129`), bound for its first engine
    /// service and kept for the next ones.
    gate: Option<std::net::TcpListener>,
}

impl LocalController {
    /// The network of a confined process of sandbox `id` (its directory `dir`), with a
    /// service's own `services` forwards.
    pub(super) fn network_of(
        &self,
        id: &SandboxId,
        dir: &Path,
        services: Vec<Forward>,
    ) -> Result<Network, SandboxError> {
        let Some(egress) = &self.egress else {
            return Ok(Network::Shared);
        };
        let sockets = sockets_dir(dir)?.join("net");
        std::fs::create_dir_all(&sockets).map_err(SandboxError::io(&sockets))?;
        let mut nets = self
            .nets
            .lock()
            .map_err(|_| SandboxError::Invalid("sandbox networks poisoned".into()))?;
        let net = nets.entry(id.to_string()).or_default();
        let proxy = egress.proxy_env();
        if self.own_netns && net.netns.is_none() {
            let (netns, loopback) = NetNs::create(proxy.is_some()).map_err(|e| {
                SandboxError::Isolation(format!("cannot make the sandbox's network namespace: {e}"))
            })?;
            tracing::debug!(sandbox = %id, netns = netns.inode(), "made the sandbox's network namespace");
            net.netns = Some(Arc::new(netns));
            net.loopback = loopback;
        }
        if let EgressPolicy::Proxy { allow, .. } = egress {
            let socket = socket_path(&sockets, "egress.sock")?;
            let live = net
                .proxy
                .as_ref()
                .is_some_and(|p| p.is_serving() && socket.exists());
            if !live {
                let mut serving = EgressProxy::serve(&socket, id.to_string(), allow.clone())
                    .map_err(SandboxError::io(&socket))?;
                if let Some(listener) = &net.loopback {
                    let listener = listener.try_clone().map_err(SandboxError::io(&socket))?;
                    serving
                        .serve_loopback(listener)
                        .map_err(SandboxError::io(&socket))?;
                }
                net.proxy = Some(serving);
            }
        }
        Ok(match &net.netns {
            Some(netns) => Network::Joined {
                sockets,
                proxy,
                services,
                netns: netns.clone(),
            },
            None => Network::Private {
                sockets,
                proxy,
                services,
            },
        })
    }

    /// A listener on `127.0.0.1:3129` inside sandbox `id`'s own network namespace, for its
    /// engine's model gate to serve from the host: the model path then has no forwarder.
    /// `None` when the sandbox has no namespace of its own (a forwarder serves it then).
    pub(super) fn gate_listener(
        &self,
        id: &SandboxId,
    ) -> Result<Option<std::net::TcpListener>, SandboxError> {
        let mut nets = self
            .nets
            .lock()
            .map_err(|_| SandboxError::Invalid("sandbox networks poisoned".into()))?;
        let Some(net) = nets.get_mut(id.as_str()) else {
            return Ok(None);
        };
        let Some(netns) = &net.netns else {
            return Ok(None);
        };
        let failed = |e: std::io::Error| {
            SandboxError::Isolation(format!(
                "cannot listen for the model gate in the sandbox: {e}"
            ))
        };
        if net.gate.is_none() {
            net.gate = Some(netns.listen_loopback(GATE_PORT).map_err(failed)?);
        }
        net.gate
            .as_ref()
            .map(|listener| listener.try_clone().map_err(failed))
            .transpose()
    }

    /// Closes sandbox `label`'s network (its proxy, its namespace's last descriptor here)
    /// and deletes the sockets of its directory `dir`.
    pub(super) fn close_network(&self, label: &str, dir: &Path) {
        if let Ok(mut nets) = self.nets.lock() {
            nets.remove(label);
        }
        if self.egress.is_some()
            && let Ok(sockets) = sockets_dir(dir)
        {
            let _ = std::fs::remove_dir_all(sockets);
        }
    }

    /// Sandbox `id`'s network namespace while it has one, without keeping it open (for
    /// tests and diagnostics: [`NetNs::inode`] is `net:[inode]` in `/proc/<pid>/ns/net`,
    /// and the reference is dead once nothing of the sandbox holds it any more).
    pub fn network_namespace(&self, id: &SandboxId) -> Option<std::sync::Weak<NetNs>> {
        let nets = self.nets.lock().ok()?;
        nets.get(id.as_str())?.netns.as_ref().map(Arc::downgrade)
    }

    /// The network sandboxes get, for capabilities and the start-up log: `proxy` (the
    /// allow-list through the egress proxy), `none` (loopback only), or `host` (no network
    /// namespace: isolation is off, or the boundary was turned off for a measurement).
    pub fn egress_in_force(&self) -> &'static str {
        match (&self.bwrap, &self.egress) {
            (Some(_), Some(egress)) => egress.as_str(),
            _ => "host",
        }
    }

    /// The host path of sandbox `id`'s egress proxy socket while its proxy serves.
    pub fn egress_socket(&self, id: &SandboxId) -> Option<PathBuf> {
        let nets = self.nets.lock().ok()?;
        let proxy = nets.get(id.as_str())?.proxy.as_ref()?;
        proxy.is_serving().then(|| proxy.path().to_path_buf())
    }

    /// The hosts sandboxes may reach through the proxy.
    pub fn egress_allowed(&self) -> Vec<String> {
        match (&self.bwrap, &self.egress) {
            (Some(_), Some(egress)) => egress.allowed(),
            _ => Vec::new(),
        }
    }
}

/// `dir/name`, refused when it is too long to be a Unix socket's address or holds what a
/// forwarder's address syntax would misread.
pub(super) fn socket_path(dir: &Path, name: &str) -> Result<PathBuf, SandboxError> {
    let path = dir.join(name);
    let text = path.to_string_lossy();
    if text.len() > MAX_SOCKET_PATH {
        return Err(SandboxError::Invalid(format!(
            "the socket path {text} is longer than {MAX_SOCKET_PATH} bytes; use a shorter data_dir"
        )));
    }
    if text.contains(['\'', ',', ':', ' ', '!', '"', '\\']) {
        return Err(SandboxError::Invalid(format!(
            "the socket path {text} holds a character the sandbox forwarder cannot take; use a plainer data_dir"
        )));
    }
    Ok(path)
}

/// Whether this service can make network namespaces of its own (`CAP_SYS_ADMIN`: root).
pub(super) fn can_make_netns() -> bool {
    match NetNs::create(false) {
        Ok(_) => true,
        Err(e) => {
            tracing::info!(error = %e, "no persistent network namespace per sandbox here: each confined process gets its own");
            false
        }
    }
}

/// The forwarder is Debian's `socat`; a confined sandbox has no network without it.
pub(super) fn require_socat() -> Result<(), SandboxError> {
    if crate::find_program("socat").is_some() {
        Ok(())
    } else {
        Err(SandboxError::Isolation(
            "socat is not installed (Debian package `socat`): a sandbox's private network needs it to reach its egress proxy".into(),
        ))
    }
}
