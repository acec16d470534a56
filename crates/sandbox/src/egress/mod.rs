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
    /// Through the sandbox's proxy.
    Proxy {
        /// The allowed host names.
        allow: Arc<AllowList>,
        /// The registry a sandboxed npm is pointed at; `None` leaves npm on its own
        /// (global or built-in) setting.
        registry: Option<NpmRegistry>,
    },
    /// Nothing: no proxy, no route.
    None,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self::Proxy {
            allow: Arc::new(AllowList::new([DEFAULT_REGISTRY_HOST])),
            registry: None,
        }
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
            "proxy" | "" => Ok(Self::Proxy {
                allow: Arc::new(AllowList::new(allow)),
                registry: None,
            }),
            "none" => Ok(Self::None),
            other => Err(SandboxError::Invalid(format!(
                "sandbox egress must be proxy or none, not {other:?}"
            ))),
        }
    }

    /// The policy with sandboxed npm pointed at `registry` (nothing changes for `none`).
    pub fn with_npm_registry(self, registry: NpmRegistry) -> Self {
        match self {
            Self::Proxy { allow, .. } => Self::Proxy {
                allow,
                registry: Some(registry),
            },
            Self::None => Self::None,
        }
    }

    /// The configuration and capabilities spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Proxy { .. } => "proxy",
            Self::None => "none",
        }
    }

    /// The allowed hosts (empty for `none`).
    pub fn allowed(&self) -> Vec<String> {
        match self {
            Self::Proxy { allow, .. } => allow.entries(),
            Self::None => Vec::new(),
        }
    }

    /// What a confined process is told of its way out (`None` without the proxy).
    pub(crate) fn proxy_env(&self) -> Option<forward::ProxyEnv> {
        match self {
            Self::Proxy { registry, .. } => Some(forward::ProxyEnv::new(registry.as_ref())),
            Self::None => None,
        }
    }
}

/// The npm registry a sandbox's processes are pointed at: the one the service user's npm is
/// configured with, wherever that is (`NPM_CONFIG_REGISTRY`, `~/.npmrc`, the global
/// npmrc). A sandboxed npm runs with neither that environment nor that HOME, so without
/// being told it would use its built-in registry while the default allow-list names the
/// configured one. Never carries credentials: a URL's user information is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpmRegistry {
    url: String,
    host: String,
}

impl Default for NpmRegistry {
    fn default() -> Self {
        Self {
            url: format!("https://{DEFAULT_REGISTRY_HOST}/"),
            host: DEFAULT_REGISTRY_HOST.to_owned(),
        }
    }
}

impl NpmRegistry {
    /// The registry of the host's npm (`npm config get registry`), or the default when npm
    /// is missing or says nothing usable.
    pub fn of_host_npm() -> Self {
        let out = std::process::Command::new("npm")
            .args(["config", "get", "registry"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output();
        out.ok()
            .filter(|o| o.status.success())
            .and_then(|o| Self::parse(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or_default()
    }

    /// A registry URL (`http` or `https`), without its user information.
    pub fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let authority = authority.rsplit('@').next()?;
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => authority,
        };
        if host.is_empty() || path.contains(char::is_whitespace) {
            return None;
        }
        Some(Self {
            url: format!("{scheme}://{}/{path}", authority.to_ascii_lowercase()),
            host: host.to_ascii_lowercase(),
        })
    }

    /// The URL sandboxed npm uses (`npm_config_registry`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its host, the allow-list's default entry.
    pub fn host(&self) -> &str {
        &self.host
    }
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
        let (allow, proxy) = match &self.egress {
            None => return Ok(Network::Shared),
            Some(EgressPolicy::None) => return Ok(Network::Isolated),
            Some(EgressPolicy::Proxy { allow, registry }) => {
                (allow, forward::ProxyEnv::new(registry.as_ref()))
            }
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
            proxy: Some(proxy),
            services: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
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
        let npmjs = NpmRegistry::parse("https://registry.npmjs.org/\n");
        assert_eq!(npmjs.as_ref(), Some(&NpmRegistry::default()));
        let mirror = NpmRegistry::parse("HTTP://user:secret@NPM.corp.example:4873/x/").unwrap();
        assert_eq!(mirror.host(), "npm.corp.example");
        assert_eq!(mirror.url(), "http://npm.corp.example:4873/x/");
        assert_eq!(NpmRegistry::parse("nonsense"), None);
        assert_eq!(NpmRegistry::parse("file:///srv/npm"), None);
    }

    #[tokio::test]
    #[allow(clippy::unwrap_used)]
    async fn an_install_is_pointed_at_the_policys_registry() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = NpmRegistry::parse("https://npm.mirror.example/").unwrap();
        let policy = EgressPolicy::parse("proxy", ["npm.mirror.example"])
            .unwrap()
            .with_npm_registry(mirror);
        let install = InstallProxy::new(dir.path().to_path_buf(), Some(policy));
        let Network::Private {
            proxy: Some(proxy), ..
        } = install.network().unwrap()
        else {
            panic!("an install through the proxy has a private network");
        };
        let vars = proxy.vars();
        assert!(vars.contains(&("npm_config_registry", "https://npm.mirror.example/".into())));
        assert!(vars.contains(&("HTTPS_PROXY", "http://127.0.0.1:3128".into())));
        let unset = forward::ProxyEnv::default().vars();
        assert!(!unset.iter().any(|(key, _)| *key == "npm_config_registry"));
        drop(install);
        let _ = std::fs::remove_dir_all(sockets_dir(dir.path()).unwrap());
    }
}
