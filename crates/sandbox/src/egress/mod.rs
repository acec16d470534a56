//! The sandbox's only way out (`[sandbox.egress]`): every confined process lives in its
//! sandbox's private network namespace ([`NetNs`]) with nothing but loopback. With
//! `egress = "proxy"` (the default) a per-sandbox [`EgressProxy`] is its way to the allowed
//! hosts, serving `127.0.0.1:3128` inside that namespace and a Unix socket bound into the
//! sandbox (where a process tree makes its own namespace, a `socat` forwarder inside
//! exposes the socket on loopback: [`forward`]); with `egress = "none"` there is no way out
//! at all.

mod decide;
pub(crate) mod forward;
mod netns;
mod plan;
mod proxy;

pub use decide::{
    ALLOW_SETTING, AddressClass, AllowList, Refusal, check_host, forbidden_class, pick_address,
};
pub use netns::NetNs;
pub use plan::Network;
pub use proxy::EgressProxy;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::SandboxError;

/// The npm registry's host, allowed when nothing else is configured.
pub const DEFAULT_REGISTRY_HOST: &str = "registry.npmjs.org";

/// What a sandbox may reach beyond its own loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressPolicy {
    /// The allowed host names, through the sandbox's proxy.
    Proxy(Arc<AllowList>),
    /// Nothing: no proxy, no route.
    None,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self::Proxy(Arc::new(AllowList::new([DEFAULT_REGISTRY_HOST])))
    }
}

impl EgressPolicy {
    /// The policy for the setting `mode` (`proxy` or `none`) and its allow-list.
    pub fn parse<I, S>(mode: &str, allow: I) -> Result<Self, SandboxError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        match mode.trim().to_ascii_lowercase().as_str() {
            "proxy" | "" => Ok(Self::Proxy(Arc::new(AllowList::new(allow)))),
            "none" => Ok(Self::None),
            other => Err(SandboxError::Invalid(format!(
                "sandbox egress must be proxy or none, not {other:?}"
            ))),
        }
    }

    /// The configuration and capabilities spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Proxy(_) => "proxy",
            Self::None => "none",
        }
    }

    /// The allowed hosts (empty for `none`).
    pub fn allowed(&self) -> Vec<String> {
        match self {
            Self::Proxy(allow) => allow.entries(),
            Self::None => Vec::new(),
        }
    }
}

/// The host of the registry the host's npm is configured with (`npm config get
/// registry`), or [`DEFAULT_REGISTRY_HOST`] when npm is missing or says nothing usable.
pub fn npm_registry_host() -> String {
    let out = std::process::Command::new("npm")
        .args(["config", "get", "registry"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    out.ok()
        .filter(|o| o.status.success())
        .and_then(|o| registry_host(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_else(|| DEFAULT_REGISTRY_HOST.to_owned())
}

/// The host part of a registry URL.
fn registry_host(url: &str) -> Option<String> {
    let rest = url.trim().split_once("://")?.1;
    let authority = rest.split('/').next()?.rsplit('@').next()?;
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// A short host directory for the sockets of `owner` (a sandbox's or the cache's directory):
/// `$TMPDIR/draftsmith-net-<uid>/<hash of owner>`. Unix socket paths hold at most 107 bytes
/// and data directories can be long. The parent is private to this uid (bound into a
/// sandbox, the directory itself is all it sees).
pub(crate) fn sockets_dir(owner: &Path) -> Result<PathBuf, SandboxError> {
    use sha2::Digest;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = draftsmith_process::uid();
    let base = std::env::temp_dir().join(format!("draftsmith-net-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&base);
    let meta = base.symlink_metadata().map_err(SandboxError::io(&base))?;
    if !meta.is_dir() || meta.uid() != uid {
        return Err(SandboxError::Isolation(format!(
            "{} is not a directory of this user; remove it",
            base.display()
        )));
    }
    let hash = sha2::Sha256::digest(owner.as_os_str().as_encoded_bytes());
    let dir = base.join(hex::encode(&hash[..8]));
    std::fs::create_dir_all(&dir).map_err(SandboxError::io(&dir))?;
    Ok(dir)
}

/// The egress proxy of dependency installs (`npm ci` into the shared cache), started on
/// first use; its socket directory is bound into each install like a sandbox's.
pub(crate) struct InstallProxy {
    owner: PathBuf,
    egress: Option<EgressPolicy>,
    serving: Mutex<Option<EgressProxy>>,
}

impl InstallProxy {
    /// A proxy whose socket directory is that of `owner` (the cache directory).
    pub(crate) fn new(owner: PathBuf, egress: Option<EgressPolicy>) -> Self {
        Self {
            owner,
            egress,
            serving: Mutex::new(None),
        }
    }

    /// The network an install runs with (needs a tokio runtime).
    pub(crate) fn network(&self) -> Result<Network, SandboxError> {
        let allow = match &self.egress {
            None => return Ok(Network::Shared),
            Some(EgressPolicy::None) => return Ok(Network::Isolated),
            Some(EgressPolicy::Proxy(allow)) => allow,
        };
        let mut serving = self
            .serving
            .lock()
            .map_err(|_| SandboxError::Invalid("install proxy lock poisoned".into()))?;
        let sockets = sockets_dir(&self.owner)?.join("net");
        let socket = sockets.join("egress.sock");
        if !serving
            .as_ref()
            .is_some_and(|p| p.is_serving() && socket.exists())
        {
            std::fs::create_dir_all(&sockets).map_err(SandboxError::io(&sockets))?;
            let proxy = EgressProxy::serve(&socket, "dependency-cache".into(), allow.clone())
                .map_err(SandboxError::io(&socket))?;
            *serving = Some(proxy);
        }
        Ok(Network::Private {
            sockets,
            proxy: true,
            services: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_setting_and_the_registry() {
        let policy = EgressPolicy::parse("proxy", ["a.example"]).ok();
        assert_eq!(
            policy.map(|p| p.allowed()),
            Some(vec!["a.example".to_owned()])
        );
        assert_eq!(
            EgressPolicy::parse("NONE", [""; 0]).ok(),
            Some(EgressPolicy::None)
        );
        assert!(EgressPolicy::parse("open", [""; 0]).is_err());
        assert_eq!(
            registry_host("https://registry.npmjs.org/\n").as_deref(),
            Some("registry.npmjs.org")
        );
        assert_eq!(
            registry_host("http://user@npm.corp.example:4873/x/").as_deref(),
            Some("npm.corp.example")
        );
        assert_eq!(registry_host("nonsense"), None);
    }
}
