//! The forwarders inside a network namespace that a process tree starts for itself: a `sh`
//! prelude runs `socat` for each forward, waits until the TCP ones listen, then `exec`s the
//! real command; as bubblewrap's PID namespace ends with that command, the forwarders die
//! with it. A service (the OpenCode server) starts its own forwards this way inside its
//! sandbox's namespace; a dependency install, or any process when the service cannot make a
//! namespace per sandbox, gets a fresh namespace and the proxy's forward too. Every TCP end
//! sets `TCP_NODELAY`: streamed model answers and requests written in pieces cross them,
//! which Nagle's algorithm would hold back until the peer's delayed acknowledgement.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::NpmRegistry;

/// Where the directory of the sandbox's sockets (the proxy's, the model gate's) appears.
pub const INSIDE_DIR: &str = "/run/draftsmith";
/// The egress proxy's socket inside.
pub const PROXY_SOCKET: &str = "/run/draftsmith/egress.sock";
/// The proxy's port on the sandbox's loopback.
pub const PROXY_PORT: u16 = 3128;
/// The port a service's model-gate route is forwarded to on the sandbox's loopback.
pub const GATE_PORT: u16 = 3129;
/// The port a service (the OpenCode server) listens on inside.
pub const SERVICE_PORT: u16 = 4096;

/// One forwarder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// Listens on `127.0.0.1:port` inside and connects to a Unix socket (a way out).
    TcpToUnix {
        /// The loopback port.
        port: u16,
        /// The socket, as seen inside.
        socket: PathBuf,
    },
    /// Listens on a Unix socket in a bound directory and connects to `127.0.0.1:port`
    /// inside (the service's way in).
    UnixToTcp {
        /// The socket, as seen inside (its directory is bound writable).
        socket: PathBuf,
        /// The service's port.
        port: u16,
    },
}

/// What every confined process is told of its way out when the egress proxy is it: the
/// proxy's address (npm and most tools read one of these variables; loopback stays direct,
/// for dev servers and the forwarded model gate) and the npm registry to use through it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    registry: Option<String>,
}

impl ProxyEnv {
    /// The variables for a sandbox whose npm is pointed at `registry` (`None`: npm's own
    /// setting).
    pub fn new(registry: Option<&NpmRegistry>) -> Self {
        Self {
            registry: registry.map(|r| r.url().to_owned()),
        }
    }

    /// The variables, as `(name, value)`.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let url = format!("http://127.0.0.1:{PROXY_PORT}");
        let mut env: Vec<(&'static str, String)> = [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "npm_config_proxy",
            "npm_config_https_proxy",
        ]
        .into_iter()
        .map(|k| (k, url.clone()))
        .collect();
        for key in ["NO_PROXY", "no_proxy"] {
            env.push((key, "localhost,127.0.0.1,::1".into()));
        }
        if let Some(registry) = &self.registry {
            env.push(("npm_config_registry", registry.clone()));
        }
        env
    }
}

/// The argv prefix (`sh -c PRELUDE sh`) that starts `forwards` and then runs the argv that
/// follows it. Paths must not contain a single quote (the controller's own paths never do).
pub fn prelude(forwards: &[Forward]) -> Vec<OsString> {
    let mut script = String::new();
    let mut ports = Vec::new();
    for forward in forwards {
        let (listen, connect) = match forward {
            Forward::TcpToUnix { port, socket } => {
                ports.push(format!("{port:04X}"));
                (
                    format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay"),
                    format!("'UNIX-CONNECT:{}'", quoted(socket)),
                )
            }
            Forward::UnixToTcp { socket, port } => (
                format!(
                    "'UNIX-LISTEN:{}',fork,unlink-early,mode=600",
                    quoted(socket)
                ),
                format!("TCP:127.0.0.1:{port},nodelay"),
            ),
        };
        script.push_str(&format!(
            "socat {listen} {connect} </dev/null >/dev/null 2>&1 &\n"
        ));
    }
    if !ports.is_empty() {
        // Wait (bounded) until every loopback listener is up, reading /proc with builtins.
        script.push_str(
            "up() { while read -r _ a _ s _; do [ \"$a $s\" = \"0100007F:$1 0A\" ] && return 0; done </proc/net/tcp; return 1; }\n",
        );
        let all = ports
            .iter()
            .map(|p| format!("up {p}"))
            .collect::<Vec<_>>()
            .join(" && ");
        script.push_str(&format!(
            "i=0; until {{ {all}; }}; do i=$((i+1)); [ $i -gt 20000 ] && break; done\n"
        ));
    }
    script.push_str("exec \"$@\"\n");
    ["sh", "-c", &script, "sh"]
        .iter()
        .map(OsString::from)
        .collect()
}

/// The path for a single-quoted shell word (a quote, which the controller's paths never
/// hold, is dropped rather than allowed to end the word).
fn quoted(path: &Path) -> String {
    path.display().to_string().replace('\'', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelude_starts_each_forward_and_waits_for_tcp_ones() {
        let argv = prelude(&[
            Forward::TcpToUnix {
                port: PROXY_PORT,
                socket: PROXY_SOCKET.into(),
            },
            Forward::UnixToTcp {
                socket: "/s/server.sock".into(),
                port: SERVICE_PORT,
            },
        ]);
        assert_eq!(argv[0], "sh");
        assert_eq!(argv[3], "sh");
        let script = argv[2].to_string_lossy();
        assert!(
            script.contains("TCP-LISTEN:3128,bind=127.0.0.1,reuseaddr,fork,nodelay "),
            "{script}"
        );
        assert!(script.contains(" TCP:127.0.0.1:4096,nodelay "), "{script}");
        assert!(
            script.contains("'UNIX-CONNECT:/run/draftsmith/egress.sock'"),
            "{script}"
        );
        assert!(
            script.contains("'UNIX-LISTEN:/s/server.sock',fork"),
            "{script}"
        );
        assert!(script.contains("up 0C38"), "{script}");
        assert!(!script.contains("up 1000"), "{script}");
        assert!(script.ends_with("exec \"$@\"\n"));
    }
}
