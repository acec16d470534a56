//! The dev server of a local sandbox: launched as a service of the sandbox (its confinement,
//! its network, a socket forwarded to its port), held by the sandbox and stopped with it.

use std::time::Duration;

use super::LocalController;
use super::service::ServiceRole;
use crate::devserver::{DevEndpoint, DevServerSpec, DevServerStatus, Spawn, Supervisor};
use crate::error::SandboxError;
use crate::id::SandboxId;

/// How long a request for a starting dev server waits for it to answer.
const SETTLE: Duration = Duration::from_secs(90);

impl LocalController {
    /// Sandbox `id`'s dev server: started with `spec` unless it runs (or is being
    /// restarted), then awaited until it answers or fails; without `spec` only its status.
    pub(super) async fn dev_server_of(
        &self,
        id: &SandboxId,
        spec: Option<&DevServerSpec>,
    ) -> Result<Option<DevServerStatus>, SandboxError> {
        let sandbox = self.get(id).await?;
        let supervisor = {
            let mut slot = sandbox
                .dev
                .lock()
                .map_err(|_| SandboxError::Invalid("dev server slot poisoned".into()))?;
            match (slot.as_ref(), spec) {
                (Some(running), _) if running.is_supervising() => running.clone(),
                (current, None) => return Ok(current.map(Supervisor::status)),
                (_, Some(spec)) => {
                    let (spawn, endpoint) = self.dev_launch(id, spec)?;
                    let started = Supervisor::start(spawn, endpoint, &sandbox.stop);
                    *slot = Some(started.clone());
                    started
                }
            }
        };
        if spec.is_none() {
            return Ok(Some(supervisor.status()));
        }
        Ok(Some(supervisor.settled(SETTLE).await))
    }

    /// Stops sandbox `id`'s dev server (its whole tree) and keeps the sandbox; the next
    /// request with a spec starts it again (benchmarks measure cold starts this way).
    pub async fn stop_dev_server(&self, id: &SandboxId) -> Result<(), SandboxError> {
        self.get(id).await?.stop_dev_server();
        Ok(())
    }

    /// What starts sandbox `id`'s dev server, and where it is reached: through its service
    /// socket inside the sandbox's network, or on a free host port when it shares the host's.
    fn dev_launch(
        &self,
        id: &SandboxId,
        spec: &DevServerSpec,
    ) -> Result<(Spawn, DevEndpoint), SandboxError> {
        let role = ServiceRole::DevServer { port: spec.port };
        let launch = self.launch_service(id.clone(), "dev", &[], role)?;
        let (endpoint, port) = match &launch.network {
            Some(network) => (DevEndpoint::Unix(network.socket.clone()), spec.port),
            None => {
                let port = free_port()?;
                (DevEndpoint::Tcp(port), port)
            }
        };
        let workspace = self.root.join(id.as_str()).join("workspace");
        let (command, mut env) = (spec.command.clone(), spec.env.clone());
        env.push(("DRAFTSMITH_PREVIEW_PORT".into(), port.to_string()));
        let socket = launch.network.as_ref().map(|n| n.socket.clone());
        let spawn: Spawn = Box::new(move || {
            if let Some(socket) = &socket {
                // A stale socket of a crashed forwarder would refuse every connection.
                let _ = std::fs::remove_file(socket);
            }
            let mut argv: Vec<String> = launch.confinement.clone();
            argv.extend(["sh".into(), "-c".into(), command.clone()]);
            let mut child = tokio::process::Command::new(&argv[0]);
            child
                .args(&argv[1..])
                .current_dir(&workspace)
                .env_clear()
                .envs(launch.env.iter().map(|(k, v)| (k, v)))
                .envs(env.iter().map(|(k, v)| (k, v)));
            launch.enclosure.admit_now(&mut child)?;
            Ok(child)
        });
        Ok((spawn, endpoint))
    }
}

/// A port free on the host's loopback right now.
fn free_port() -> Result<u16, SandboxError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| SandboxError::Process(format!("no free port for the dev server: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| SandboxError::Process(format!("no free port for the dev server: {e}")))
}
