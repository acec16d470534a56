//! The egress proxy of one sandbox: HTTP `CONNECT` and plain (absolute-form) HTTP, served on
//! a Unix socket bound into that sandbox only and on the loopback listener of its network
//! namespace, so where a connection comes in names who asks. Each request's
//! host goes through [`check_host`], each resolved address through [`pick_address`], and
//! only a checked address is connected to; a refusal is a 403 whose text names the host
//! and the setting to change. Every decision is logged with the sandbox's label.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener};
use tokio::task::JoinHandle;

use super::decide::{AllowList, Refusal, check_host, pick_address};

/// Largest request head read before answering 400.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long resolving and connecting upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A proxy serving one Unix socket (and, for a sandbox with a network namespace of its
/// own, its loopback listener); stopped (and its socket deleted) when dropped.
#[derive(Debug)]
pub struct EgressProxy {
    path: PathBuf,
    label: Arc<str>,
    allow: Arc<AllowList>,
    tasks: Vec<JoinHandle<()>>,
}

impl EgressProxy {
    /// Binds `path` (replacing a stale socket) and serves it with `allow`, logging each
    /// decision with `label` (the sandbox id). Needs a tokio runtime.
    pub fn serve(path: &Path, label: String, allow: Arc<AllowList>) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        // The sandbox's processes may run as another uid; the directory is theirs alone.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        let label: Arc<str> = label.into();
        let (task_label, task_allow) = (label.clone(), allow.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (label, allow) = (task_label.clone(), task_allow.clone());
                tokio::spawn(async move { handle(stream, &label, &allow).await });
            }
        });
        Ok(Self {
            path: path.to_path_buf(),
            label,
            allow,
            tasks: vec![task],
        })
    }

    /// Also serves `listener` (a sandbox's `127.0.0.1:3128`, bound inside its network
    /// namespace): the same decisions, without a forwarder process in between.
    pub(crate) fn serve_loopback(
        &mut self,
        listener: std::net::TcpListener,
    ) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (label, allow) = (self.label.clone(), self.allow.clone());
        self.tasks.push(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of descriptors: wait instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (label, allow) = (label.clone(), allow.clone());
                tokio::spawn(async move { handle(stream, &label, &allow).await });
            }
        }));
        Ok(())
    }

    /// The socket it serves.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it still serves.
    pub fn is_serving(&self) -> bool {
        self.tasks.iter().all(|t| !t.is_finished())
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One parsed request head.
struct Head {
    method: String,
    host: String,
    port: u16,
    /// For plain HTTP: the head to send upstream (origin-form, `Connection: close`).
    forward: Option<Vec<u8>>,
}

async fn handle<S>(mut client: S, label: &str, allow: &AllowList)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (head, rest) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(read)) => read,
        Ok(Err(refusal)) => return refuse(&mut client, label, "?", &refusal, 400).await,
        Err(_) => return,
    };
    let parsed = match parse_head(&head) {
        Ok(parsed) => parsed,
        Err(refusal) => return refuse(&mut client, label, "?", &refusal, 400).await,
    };
    let target = format!("{}:{}", parsed.host, parsed.port);
    let host = match check_host(&parsed.host, allow) {
        Ok(host) => host,
        Err(refusal) => return refuse(&mut client, label, &target, &refusal, 403).await,
    };
    let upstream = match connect(&host, parsed.port).await {
        Ok(stream) => stream,
        Err(Failure::Refused(refusal)) => {
            return refuse(&mut client, label, &target, &refusal, 403).await;
        }
        Err(Failure::Unreachable(why)) => {
            tracing::info!(sandbox = label, %target, decision = "allowed", outcome = "unreachable", %why, "egress");
            let text =
                format!("draftsmith egress proxy: {target} is allowed but unreachable: {why}\n");
            let _ = client.write_all(&answer(502, "Bad Gateway", &text)).await;
            return;
        }
    };
    tracing::info!(sandbox = label, method = %parsed.method, %target, decision = "allowed", "egress");
    let _ = relay(client, upstream, parsed.forward, &rest).await;
}

enum Failure {
    Refused(Refusal),
    Unreachable(String),
}

/// Resolves `host`, checks every address, connects to a checked one.
async fn connect(host: &str, port: u16) -> Result<TcpStream, Failure> {
    let lookup = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port)));
    let resolved: Vec<IpAddr> = match lookup.await {
        Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
        Ok(Err(e)) => return Err(Failure::Unreachable(format!("cannot resolve {host}: {e}"))),
        Err(_) => return Err(Failure::Unreachable(format!("resolving {host} timed out"))),
    };
    let addr = pick_address(host, &resolved).map_err(Failure::Refused)?;
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect(SocketAddr::new(addr, port)),
    )
    .await
    {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(Failure::Unreachable(format!("connecting to {addr}: {e}"))),
        Err(_) => Err(Failure::Unreachable(format!(
            "connecting to {addr} timed out"
        ))),
    }
}

/// Answers `CONNECT` and tunnels, or sends the rewritten head (and any body bytes already
/// read) and relays the answer.
async fn relay(
    mut client: impl AsyncRead + AsyncWrite + Unpin,
    mut upstream: TcpStream,
    forward: Option<Vec<u8>>,
    rest: &[u8],
) -> std::io::Result<()> {
    match forward {
        None => {
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
        }
        Some(head) => upstream.write_all(&head).await?,
    }
    upstream.write_all(rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

async fn refuse(
    client: &mut (impl AsyncWrite + Unpin),
    label: &str,
    target: &str,
    refusal: &Refusal,
    status: u16,
) {
    tracing::info!(sandbox = label, %target, decision = "refused", reason = %refusal, "egress");
    let reason = if status == 403 {
        "Forbidden"
    } else {
        "Bad Request"
    };
    let text = format!("draftsmith egress proxy refused {target}: {refusal}\n");
    let _ = client.write_all(&answer(status, reason, &text)).await;
    let _ = client.shutdown().await;
}

fn answer(status: u16, reason: &str, text: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
    .into_bytes()
}

/// Reads up to the end of the head; returns the head and the bytes read past it.
async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> Result<(String, Vec<u8>), Refusal> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        if n == 0 {
            return Err(Refusal::Malformed(
                "the connection closed mid-request".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            let head =
                String::from_utf8(buf).map_err(|_| Refusal::Malformed("not UTF-8".into()))?;
            return Ok((head, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(Refusal::Malformed("the request head is too large".into()));
        }
    }
}

/// Parses a `CONNECT host:port` or an absolute-form `http://` request.
fn parse_head(head: &str) -> Result<Head, Refusal> {
    let bad = |why: &str| Refusal::Malformed(why.to_owned());
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected METHOD TARGET VERSION"));
    };
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) =
            split_host_port(target, None).ok_or_else(|| bad("CONNECT needs host:port"))?;
        return Ok(Head {
            method: method.into(),
            host,
            port,
            forward: None,
        });
    }
    let rest = target
        .strip_prefix("http://")
        .ok_or_else(|| bad("only CONNECT and absolute http:// requests go through the proxy"))?;
    let (authority, path) = rest
        .find('/')
        .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = split_host_port(authority, Some(80)).ok_or_else(|| bad("bad host"))?;
    let mut forward = format!("{method} {path} {version}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if !matches!(
            name.as_str(),
            "proxy-connection" | "proxy-authorization" | "connection" | "keep-alive"
        ) {
            forward.push_str(line);
            forward.push_str("\r\n");
        }
    }
    forward.push_str("Connection: close\r\n\r\n");
    Ok(Head {
        method: method.into(),
        host,
        port,
        forward: Some(forward.into_bytes()),
    })
}

/// `host:port`, `[v6]:port` or, with a default, a bare host.
fn split_host_port(authority: &str, default: Option<u16>) -> Option<(String, u16)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default?,
        };
        return Some((format!("[{host}]"), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host.to_owned(), port.parse().ok()?)),
        Some(_) => Some((authority.to_owned(), default?)),
        None => Some((authority.to_owned(), default?)),
    }
    .filter(|(host, _)| !host.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_both_request_forms() {
        let connect =
            parse_head("CONNECT registry.npmjs.org:443 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(
            (connect.host.as_str(), connect.port),
            ("registry.npmjs.org", 443)
        );
        assert!(connect.forward.is_none());
        let get = parse_head(
            "GET http://a.example:8080/x?y=1 HTTP/1.1\r\nHost: a.example\r\nProxy-Connection: keep-alive\r\n\r\n",
        )
        .unwrap();
        assert_eq!((get.host.as_str(), get.port), ("a.example", 8080));
        let forward = String::from_utf8(get.forward.unwrap()).unwrap();
        assert_eq!(
            forward,
            "GET /x?y=1 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n"
        );
        let v6 = parse_head("CONNECT [::1]:22 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(v6.host, "[::1]");
        assert!(parse_head("GET /relative HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_head("CONNECT nohost HTTP/1.1\r\n\r\n").is_err());
    }
}
