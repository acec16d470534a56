//! Long-lived services of a sandbox (the OpenCode server): started by their engine, but
//! inside the sandbox's directory and confinement, so they see what the sandbox's commands
//! see and die with it (its stop and the reaper kill every process working in its
//! directory, then delete the directory with the service's private HOME).

use std::path::{Component, Path, PathBuf};

use super::LocalController;
use crate::bwrap::BwrapProfile;
use crate::enclosure::Enclosure;
use crate::error::SandboxError;
use crate::id::SandboxId;

/// How to start one service of a sandbox.
#[derive(Debug, Clone)]
pub struct ServiceLaunch {
    /// The sandbox the service belongs to.
    pub sandbox: SandboxId,
    /// The service's private HOME, inside the sandbox's directory (not its workspace).
    pub home: PathBuf,
    /// The argv prefix confining it (`bwrap … -- setpriv …`); empty when isolation is `none`.
    pub confinement: Vec<String>,
    /// The sandbox's cgroup, rlimits and uid: apply it to the command right before the
    /// spawn ([`Enclosure::admit_now`]), after the HOME is written.
    pub enclosure: Enclosure,
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
        let enclosure = self.enclosure(&sandbox, uid, vec![workspace.clone(), home.clone()])?;
        let confinement = match &self.bwrap {
            None => Vec::new(),
            Some(bwrap) => {
                let profile = BwrapProfile {
                    bwrap: bwrap.clone(),
                    writable: vec![workspace.clone(), home.clone()],
                    readonly: readonly.to_vec(),
                    hidden: self.hidden.clone(),
                    network: self.network,
                    identity: enclosure.uid(),
                };
                let mut argv = vec![bwrap.clone().into_os_string()];
                argv.extend(profile.args(&workspace));
                argv.push("--".into());
                argv.extend(profile.entry());
                argv.into_iter()
                    .map(|arg| {
                        arg.into_string().map_err(|arg| {
                            SandboxError::Invalid(format!("a path is not UTF-8: {arg:?}"))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(ServiceLaunch {
            sandbox,
            home,
            confinement,
            enclosure,
        })
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
