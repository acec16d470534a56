//! The model gate: a loopback HTTP gateway between OpenCode servers and model providers that
//! holds the providers' API keys, so no key ever enters a sandbox (OpenCode's own `bash`
//! tool inherits its configuration). Each server is configured with its own route — a
//! random token in the path — that forwards to its pinned provider with the key added, and
//! is closed when the server stops. A leaked route reaches one model, from loopback, while
//! that server lives; the key itself stays in this process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use draftsmith_engine::ProviderKind;

use crate::config::GateEndpoint;
use tokio::task::JoinHandle;

/// The largest request body forwarded (long histories are large, but not this large).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// The key OpenCode is configured with in place of the real one (its SDKs want one).
pub const PLACEHOLDER_KEY: &str = "draftsmith-model-gate";

/// Where one route forwards to.
#[derive(Clone)]
struct Upstream {
    base_url: String,
    api_key: Option<String>,
    kind: ProviderKind,
    /// Served on its own Unix socket only (one sandbox's), never on the loopback port.
    on_socket: bool,
    health: Health,
}

/// What a route saw of its provider: the run following the server reads it to end a run
/// whose provider keeps failing, or whose stream was cut, as the native engine would,
/// instead of waiting out OpenCode's own retries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpstreamHealth {
    /// Good answers (HTTP 2xx) since the run began: one for each model call it made.
    pub answers: u32,
    /// Failed answers (HTTP 429 or 5xx, or no answer) since the last good one.
    pub failures: u32,
    /// The last failure's HTTP status (502 when the provider was unreachable).
    pub status: Option<u16>,
    /// The last failure's message, as the provider put it.
    pub message: String,
    /// A streamed answer ended (or broke) before its end marker (`[DONE]`, `message_stop`).
    pub cut: bool,
}

/// A route's [`UpstreamHealth`], shared with the run that follows its server.
pub type Health = Arc<Mutex<UpstreamHealth>>;

fn record(health: &Health, change: impl FnOnce(&mut UpstreamHealth)) {
    if let Ok(mut h) = health.lock() {
        change(&mut h);
    }
}

type Routes = Arc<Mutex<HashMap<String, Upstream>>>;

#[derive(Clone)]
struct Gate {
    routes: Routes,
    http: reqwest::Client,
    /// `None`: the loopback listener (loopback routes only); `Some(token)`: a sandbox's
    /// socket, serving that one route.
    serves: Option<String>,
}

/// A running gate; stopped when dropped. It runs on a runtime of its own (one thread,
/// `model-gate`): a model request crosses it at each agent step, when the OpenCode server
/// has just sent that step's burst of events, and the service's own runtime is busy
/// translating, storing and streaming them; the step's request and answer do not queue
/// behind that work.
pub struct ModelGate {
    addr: SocketAddr,
    routes: Routes,
    task: JoinHandle<()>,
    /// What serves each route opened inside a sandbox, by token.
    inside: Mutex<HashMap<String, Inside>>,
    http: reqwest::Client,
    /// Where the gate's listeners and forwarding run; shut down when the gate drops.
    runtime: Option<tokio::runtime::Runtime>,
}

/// One open route: the base URL to configure a server with, and the token to close it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `http://127.0.0.1:P/<token>`, standing in for the provider's base URL.
    pub base_url: String,
    /// The route's secret path segment.
    pub token: String,
}

impl ModelGate {
    /// Binds a free loopback port and serves until dropped.
    pub async fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("model-gate")
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let routes = Routes::default();
        let http = reqwest::Client::new();
        let gate = Gate {
            routes: routes.clone(),
            http: http.clone(),
            serves: None,
        };
        let task = serve(&runtime, Listen::Tcp(listener), app(gate), "the model gate")?;
        Ok(Self {
            addr,
            routes,
            task,
            inside: Mutex::default(),
            http,
            runtime: Some(runtime),
        })
    }

    /// Opens a route to `base_url` that adds `api_key` the way `kind` expects it.
    pub fn open(&self, base_url: &str, api_key: &str, kind: ProviderKind) -> Route {
        let token = self.insert(base_url, Some(api_key), kind, false);
        Route {
            base_url: format!("http://{}/{token}", self.addr),
            token,
        }
    }

    /// Opens a route served only at `endpoint`, one sandbox's own: a listener on its
    /// loopback, or a Unix socket bound into it and forwarded there; either way the
    /// sandbox's server reaches it at `inside_url` (the route's base URL is that plus the
    /// token), without the host's loopback, and nothing else reaches the route. `api_key`,
    /// when given, is added the way `kind` expects.
    pub fn open_inside(
        &self,
        endpoint: &GateEndpoint,
        inside_url: &str,
        base_url: &str,
        api_key: Option<&str>,
        kind: ProviderKind,
    ) -> std::io::Result<Route> {
        let token = self.insert(base_url, api_key, kind, true);
        let gate = Gate {
            routes: self.routes.clone(),
            http: self.http.clone(),
            serves: Some(token.clone()),
        };
        let (listen, socket) = match endpoint {
            GateEndpoint::Listener(listener) => (Listen::Tcp(listener.try_clone()?), None),
            GateEndpoint::Socket(socket) => {
                let _ = std::fs::remove_file(socket);
                let listener = std::os::unix::net::UnixListener::bind(socket)?;
                // The sandbox's processes may run as another uid; the socket is bound there
                // alone.
                std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))?;
                (Listen::Unix(listener), Some(socket.clone()))
            }
        };
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the model gate stopped"))?;
        let task = serve(runtime, listen, app(gate), "a model-gate route")?;
        if let Ok(mut inside) = self.inside.lock() {
            inside.insert(token.clone(), Inside { task, socket });
        }
        Ok(Route {
            base_url: format!("{}/{token}", inside_url.trim_end_matches('/')),
            token,
        })
    }

    fn insert(
        &self,
        base_url: &str,
        api_key: Option<&str>,
        kind: ProviderKind,
        on_socket: bool,
    ) -> String {
        let token = crate::server::random_password();
        let upstream = Upstream {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.filter(|k| !k.is_empty()).map(str::to_owned),
            kind,
            on_socket,
            health: Health::default(),
        };
        if let Ok(mut routes) = self.routes.lock() {
            routes.insert(token.clone(), upstream);
        }
        token
    }

    /// Closes a route (and its socket); later requests on it are refused.
    pub fn close(&self, token: &str) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.remove(token);
        }
        let served = self.inside.lock().ok().and_then(|mut s| s.remove(token));
        if let Some(served) = served {
            served.stop();
        }
    }

    /// The health of an open route's provider.
    pub fn health(&self, token: &str) -> Option<Health> {
        let routes = self.routes.lock().ok()?;
        routes.get(token).map(|u| u.health.clone())
    }

    /// How many routes are open (for tests).
    pub fn open_routes(&self) -> usize {
        self.routes.lock().map(|r| r.len()).unwrap_or(0)
    }
}

/// A listener the gate serves on.
enum Listen {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// Serves `app` on `listen` on the gate's `runtime` until the task is aborted; `what`
/// names it in the log should it stop on its own.
fn serve(
    runtime: &tokio::runtime::Runtime,
    listen: Listen,
    app: Router,
    what: &'static str,
) -> std::io::Result<JoinHandle<()>> {
    // Registered with the gate's runtime, whichever runtime calls.
    let _entered = runtime.enter();
    Ok(match listen {
        Listen::Tcp(listener) => {
            listener.set_nonblocking(true)?;
            // Streamed answers are many small writes: send each at once (no Nagle delay).
            let listener = tokio::net::TcpListener::from_std(listener)?.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            runtime.spawn(async move {
                if let Err(err) = axum::serve(listener, app).await {
                    tracing::error!(error = %err, "{what} stopped");
                }
            })
        }
        Listen::Unix(listener) => {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::UnixListener::from_std(listener)?;
            runtime.spawn(async move {
                if let Err(err) = axum::serve(listener, app).await {
                    tracing::error!(error = %err, "{what} stopped");
                }
            })
        }
    })
}

/// The serving of one route opened inside a sandbox.
struct Inside {
    task: JoinHandle<()>,
    /// Its Unix socket, when it is served on one.
    socket: Option<PathBuf>,
}

impl Inside {
    /// Stops serving and removes the socket.
    fn stop(self) {
        self.task.abort();
        if let Some(path) = self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for ModelGate {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(mut inside) = self.inside.lock() {
            for (_, served) in inside.drain() {
                served.stop();
            }
        }
        // Allowed where blocking is not (the gate may drop inside the service's runtime).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn app(gate: Gate) -> Router {
    Router::new()
        .route("/{token}/{*rest}", axum::routing::any(forward))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(gate)
}

/// Headers never copied across: hop-by-hop ones, the host, lengths the bodies set again,
/// and every credential (the upstream's is added, whatever the caller sent is dropped).
fn is_dropped(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-authorization"
            | "proxy-connection"
            | "content-length"
            | "authorization"
            | "x-api-key"
    )
}

async fn forward(
    State(gate): State<Gate>,
    Path((token, rest)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let upstream = gate
        .routes
        .lock()
        .ok()
        .and_then(|routes| routes.get(&token).cloned())
        .filter(|up| match &gate.serves {
            None => !up.on_socket,
            Some(own) => *own == token,
        });
    let Some(upstream) = upstream else {
        return refusal(
            StatusCode::NOT_FOUND,
            "no such model route (closed or never opened)",
        );
    };
    let mut url = format!("{}/{rest}", upstream.base_url);
    if let Some(query) = query {
        url = format!("{url}?{query}");
    }
    let mut request = gate.http.request(method, &url).body(body);
    for (name, value) in headers.iter().filter(|(n, _)| !is_dropped(n)) {
        request = request.header(name, value);
    }
    request = match (upstream.kind, &upstream.api_key) {
        (_, None) => request,
        (ProviderKind::OpenAi, Some(key)) => request.bearer_auth(key),
        (ProviderKind::Anthropic, Some(key)) => request.header("x-api-key", key),
    };
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(err) => {
            let message = format!("the model provider is unreachable: {err}");
            failed(&upstream.health, 502, &message);
            return refusal(StatusCode::BAD_GATEWAY, &message);
        }
    };
    let status = answer.status().as_u16();
    let mut response = Response::builder().status(status);
    for (name, value) in answer.headers().iter().filter(|(n, _)| !is_dropped(n)) {
        response = response.header(name.as_str(), value.as_bytes());
    }
    let body = if status == 429 || status >= 500 {
        // Small error answers: read whole, so the run can report what the provider said.
        let bytes = answer.bytes().await.unwrap_or_default();
        failed(&upstream.health, status, &provider_message(&bytes));
        Body::from(bytes)
    } else {
        if (200..300).contains(&status) {
            record(&upstream.health, |h| {
                h.failures = 0;
                h.answers += 1;
            });
        }
        let streamed = answer
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if streamed {
            watched(answer, upstream.health.clone())
        } else {
            Body::from_stream(answer.bytes_stream())
        }
    };
    response
        .body(body)
        .unwrap_or_else(|_| refusal(StatusCode::BAD_GATEWAY, "unreadable provider answer"))
}

fn failed(health: &Health, status: u16, message: &str) {
    record(health, |h| {
        h.failures += 1;
        h.status = Some(status);
        h.message = message.to_owned();
    });
}

/// `error.message` of a JSON error body, else its text (shortened).
fn provider_message(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let json: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    let message = json
        .as_ref()
        .and_then(|j| j["error"]["message"].as_str().or(j["message"].as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| text.trim().to_owned());
    message.chars().take(300).collect()
}

/// Streams an SSE answer through, noting in `health` when it ends or breaks before its end
/// marker (`data: [DONE]` for OpenAI, `message_stop` for Anthropic).
fn watched(answer: reqwest::Response, health: Health) -> Body {
    use futures::StreamExt;
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = finished.clone();
    let mut tail: Vec<u8> = Vec::new();
    let broke = health.clone();
    let chunks = answer.bytes_stream().map(move |chunk| {
        match &chunk {
            Ok(bytes) => {
                tail.extend_from_slice(bytes);
                let text = String::from_utf8_lossy(&tail);
                if text.contains("[DONE]") || text.contains("message_stop") {
                    seen.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                let keep = tail.len().saturating_sub(16);
                tail.drain(..keep);
            }
            Err(_) => record(&broke, |h| h.cut = true),
        }
        chunk
    });
    let end = futures::stream::once(async move {
        if !finished.load(std::sync::atomic::Ordering::SeqCst) {
            record(&health, |h| h.cut = true);
        }
    })
    .filter_map(|()| async { None::<Result<Bytes, reqwest::Error>> });
    Body::from_stream(chunks.chain(end))
}

/// An OpenAI-shaped error (both SDKs read `error.message`).
fn refusal(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"error": {"message": message, "type": "draftsmith_model_gate"}});
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}
