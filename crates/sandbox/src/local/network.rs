//! A sandbox's private network: the directory of its sockets (`<sandbox>/net`, bound
//! read-only at `/run/draftsmith`) and its egress proxy, started on first use (also for a
//! sandbox adopted after a restart) and closed when the sandbox stops.

use std::path::{Path, PathBuf};

use super::LocalController;
use crate::bwrap::Network;
use crate::egress::forward::Forward;
use crate::egress::{EgressPolicy, EgressProxy, sockets_dir};
use crate::error::SandboxError;
use crate::id::SandboxId;

/// Longest Unix socket path (`sun_path` holds 108 bytes with its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

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
        let proxy = match egress {
            EgressPolicy::Proxy(allow) => {
                let socket = socket_path(&sockets, "egress.sock")?;
                let mut proxies = self
                    .proxies
                    .lock()
                    .map_err(|_| SandboxError::Invalid("egress proxies poisoned".into()))?;
                let live = proxies
                    .get(id.as_str())
                    .is_some_and(|p| p.is_serving() && socket.exists());
                if !live {
                    let proxy = EgressProxy::serve(&socket, id.to_string(), allow.clone())
                        .map_err(SandboxError::io(&socket))?;
                    proxies.insert(id.to_string(), proxy);
                }
                true
            }
            EgressPolicy::None => false,
        };
        Ok(Network::Private {
            sockets,
            proxy,
            services,
        })
    }

    /// Stops sandbox `label`'s egress proxy and deletes the sockets of its directory `dir`.
    pub(super) fn close_network(&self, label: &str, dir: &Path) {
        if let Ok(mut proxies) = self.proxies.lock() {
            proxies.remove(label);
        }
        if self.egress.is_some()
            && let Ok(sockets) = sockets_dir(dir)
        {
            let _ = std::fs::remove_dir_all(sockets);
        }
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
        let proxies = self.proxies.lock().ok()?;
        let proxy = proxies.get(id.as_str()).filter(|p| p.is_serving())?;
        Some(proxy.path().to_path_buf())
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

/// The forwarder is Debian's `socat`; a confined sandbox has no network without it.
pub(super) fn require_socat() -> Result<(), SandboxError> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join("socat").is_file()))
        .unwrap_or(false)
        || Path::new("/usr/bin/socat").is_file();
    if found {
        Ok(())
    } else {
        Err(SandboxError::Isolation(
            "socat is not installed (Debian package `socat`): a sandbox's private network needs it to reach its egress proxy".into(),
        ))
    }
}
