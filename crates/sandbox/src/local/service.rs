//! Long-lived services of a sandbox (the OpenCode server, the app's dev server): started by their engine, but
//! inside the sandbox's directory and confinement, so they see what the sandbox's commands
//! see and die with it (its stop and the reaper kill every process working in its
//! directory, then delete the directory with the service's private HOME).

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::LocalController;
use super::network::socket_path;
use crate::bwrap::{BwrapProfile, Network};
use crate::egress::forward::{Forward, GATE_PORT, INSIDE_DIR, SERVICE_PORT};
use crate::enclosure::Enclosure;
use crate::error::SandboxError;
use crate::id::SandboxId;

/// Which forwards a service needs inside the sandbox's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServiceRole {
    /// An engine's server (OpenCode): reached on [`SERVICE_PORT`], reaching its model gate.
    Engine,
    /// The app's dev server: reached on its own port, reaching nothing.
    DevServer {
        /// The port it listens on inside.
        port: u16,
    },
}

/// How to start one service of a sandbox.
#[derive(Debug, Clone)]
pub struct ServiceLaunch {
    /// The sandbox the service belongs to.
    pub sandbox: SandboxId,
    /// The service's private HOME, inside the sandbox's directory (not its workspace).
    pub home: PathBuf,
    /// The environment it starts with, as every sandboxed process does (the sandbox's
    /// `PATH`, that HOME, the locale): nothing of the service's own.
    pub env: Vec<(String, String)>,
    /// The argv prefix confining it (`bwrap … -- setpriv …`); empty when isolation is `none`.
    pub confinement: Vec<String>,
    /// The sandbox's cgroup, rlimits and uid: apply it to the command right before the
    /// spawn ([`Enclosure::admit_now`]), after the HOME is written.
    pub enclosure: Enclosure,
    /// How it is reached and reaches its model when it lives in a private network
    /// namespace; `None` when it shares the host's network.
    pub network: Option<ServiceNetwork>,
}

/// A service across the network boundary: reached through a Unix socket (forwarded inside to
/// its loopback port), reaching its model-gate route on the sandbox's loopback, never
/// through the host's loopback.
#[derive(Debug, Clone)]
pub struct ServiceNetwork {
    /// The host path of the Unix socket the service is reached through.
    pub socket: PathBuf,
    /// The port the service must listen on, on the sandbox's own loopback.
    pub port: u16,
    /// Where the service's model-gate route must be served.
    pub gate: ServiceGate,
    /// The gate's root as the service reaches it inside (`http://127.0.0.1:3129`).
    pub gate_url: String,
}

/// Where a service's model-gate route is served from the host.
#[derive(Debug, Clone)]
pub enum ServiceGate {
    /// The listener on `127.0.0.1:3129` inside the sandbox's own network namespace: the
    /// service's model requests reach the gate with no forwarder between.
    Listener(Arc<std::net::TcpListener>),
    /// A Unix socket (bound into this sandbox only) that a forwarder inside the service's
    /// namespace connects `127.0.0.1:3129` to (a namespace per process).
    Socket(PathBuf),
}

impl LocalController {
    /// How service `name` of the sandbox whose workspace is `workspace` must be started:
    /// a private HOME under the sandbox's directory, and bubblewrap with the sandbox's own
    /// profile (system read-only, the workspace and that HOME writable, the data directory
    /// and other sandboxes hidden) plus `readonly` host paths it needs (its install
    /// directory). Refused for a directory that is not one of this controller's workspaces.
    pub fn service_launch(
        &self,
        workspace: &Path,
        name: &str,
        readonly: &[PathBuf],
    ) -> Result<ServiceLaunch, SandboxError> {
        let sandbox = self.sandbox_of(workspace)?;
        self.launch_service(sandbox, name, readonly, ServiceRole::Engine)
    }

    /// [`LocalController::service_launch`] for sandbox `sandbox`, with the forwards `role`
    /// needs.
    pub(super) fn launch_service(
        &self,
        sandbox: SandboxId,
        name: &str,
        readonly: &[PathBuf],
        role: ServiceRole,
    ) -> Result<ServiceLaunch, SandboxError> {
        let dir = self.root.join(sandbox.as_str());
        let workspace = dir.join("workspace");
        if !workspace.is_dir() {
            return Err(SandboxError::NotFound(sandbox.to_string()));
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(SandboxError::Invalid(format!(
                "invalid service name {name:?}"
            )));
        }
        let home = dir.join("services").join(name);
        std::fs::create_dir_all(&home).map_err(SandboxError::io(&home))?;
        // The state file has the sandbox's uid; the map's lock is async and this is not.
        let uid = super::sandbox::Sandbox::load(&self.root, &sandbox).uid();
        if self.uids.is_some() && uid.is_none() {
            return Err(SandboxError::NotFound(sandbox.to_string()));
        }
        let mut enclosure = self.enclosure(&sandbox, uid, vec![workspace.clone(), home.clone()])?;
        let (confinement, network) = match &self.bwrap {
            None => (Vec::new(), None),
            Some(bwrap) => {
                let mut writable = vec![workspace.clone(), home.clone()];
                let (network, service) = self.service_network(&sandbox, &dir, name, role)?;
                enclosure.netns = network.netns();
                if let Some(service) = &service
                    && let Some(socket_dir) = service.socket.parent()
                {
                    writable.push(socket_dir.to_path_buf());
                }
                let profile = BwrapProfile {
                    bwrap: bwrap.clone(),
                    writable,
                    readonly: readonly.to_vec(),
                    hidden: self.hidden.clone(),
                    network,
                    identity: enclosure.uid(),
                };
                let mut argv = vec![bwrap.clone().into_os_string()];
                argv.extend(profile.args(&workspace));
                argv.push("--".into());
                argv.extend(profile.entry());
                argv.extend(profile.network.command_prefix());
                let argv: Result<Vec<String>, SandboxError> = argv
                    .into_iter()
                    .map(|arg| {
                        arg.into_string().map_err(|arg| {
                            SandboxError::Invalid(format!("a path is not UTF-8: {arg:?}"))
                        })
                    })
                    .collect();
                (argv?, service)
            }
        };
        Ok(ServiceLaunch {
            sandbox,
            env: crate::process::base_env(&home),
            home,
            confinement,
            enclosure,
            network,
        })
    }

    /// The network of service `name`: the sandbox's, plus a forward from a Unix socket in
    /// the sandbox's `svc/` sockets directory (bound writable) to the service's port and one
    /// from the sandbox's loopback to its model-gate socket in `net/`.
    fn service_network(
        &self,
        sandbox: &SandboxId,
        dir: &Path,
        name: &str,
        role: ServiceRole,
    ) -> Result<(Network, Option<ServiceNetwork>), SandboxError> {
        if self.egress.is_none() {
            return Ok((Network::Shared, None));
        }
        let socket_dir = crate::egress::sockets_dir(dir)?.join("svc");
        std::fs::create_dir_all(&socket_dir).map_err(SandboxError::io(&socket_dir))?;
        // The forwarder creates the service's socket here as the sandbox's uid; the directory
        // is bound into this sandbox only.
        let open = std::fs::Permissions::from_mode(0o777);
        std::fs::set_permissions(&socket_dir, open).map_err(SandboxError::io(&socket_dir))?;
        let socket = socket_path(&socket_dir, &format!("{name}.sock"))?;
        let gate_name = format!("gate-{name}.sock");
        let gate_socket = socket_path(&crate::egress::sockets_dir(dir)?.join("net"), &gate_name)?;
        let port = match role {
            ServiceRole::Engine => SERVICE_PORT,
            ServiceRole::DevServer { port } => port,
        };
        let mut forwards = vec![Forward::UnixToTcp {
            socket: socket.clone(),
            port,
        }];
        // With a namespace of the sandbox's own, the gate listens inside it itself.
        if role == ServiceRole::Engine && !self.own_netns {
            forwards.insert(
                0,
                Forward::TcpToUnix {
                    port: GATE_PORT,
                    socket: Path::new(INSIDE_DIR).join(&gate_name),
                },
            );
        }
        let network = self.network_of(sandbox, dir, forwards)?;
        let gate = match &network {
            Network::Joined { .. } if role == ServiceRole::Engine => {
                let listener = self.gate_listener(sandbox)?.ok_or_else(|| {
                    SandboxError::Isolation("the sandbox's network namespace is gone".into())
                })?;
                ServiceGate::Listener(Arc::new(listener))
            }
            _ => ServiceGate::Socket(gate_socket),
        };
        let service = ServiceNetwork {
            socket,
            port,
            gate,
            gate_url: format!("http://127.0.0.1:{GATE_PORT}"),
        };
        Ok((network, Some(service)))
    }

    /// The sandbox whose workspace is `workspace` (`<root>/<id>/workspace`).
    fn sandbox_of(&self, workspace: &Path) -> Result<SandboxId, SandboxError> {
        let canonical = workspace
            .canonicalize()
            .unwrap_or_else(|_| workspace.to_path_buf());
        let not_ours = || {
            SandboxError::Invalid(format!(
                "{} is not a sandbox workspace of this controller",
                workspace.display()
            ))
        };
        let relative = canonical.strip_prefix(&self.root).map_err(|_| not_ours())?;
        let parts: Vec<Component<'_>> = relative.components().collect();
        match parts.as_slice() {
            [Component::Normal(id), Component::Normal(ws)] if *ws == "workspace" => {
                SandboxId::parse(&id.to_string_lossy())
            }
            _ => Err(not_ours()),
        }
    }
}
