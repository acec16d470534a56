//! The model gate: a loopback HTTP gateway between OpenCode servers and model providers that
//! holds the providers' API keys, so no key ever enters a sandbox (OpenCode's own `bash`
//! tool inherits its configuration). Each server is configured with its own route — a
//! random token in the path — that forwards to its pinned provider with the key added, and
//! is closed when the server stops. A leaked route reaches one model, from loopback, while
//! that server lives; the key itself stays in this process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use draftsmith_engine::ProviderKind;
use tokio::task::JoinHandle;

/// The largest request body forwarded (long histories are large, but not this large).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// The key OpenCode is configured with in place of the real one (its SDKs want one).
pub const PLACEHOLDER_KEY: &str = "draftsmith-model-gate";

/// Where one route forwards to.
#[derive(Clone)]
struct Upstream {
    base_url: String,
    api_key: String,
    kind: ProviderKind,
}

type Routes = Arc<Mutex<HashMap<String, Upstream>>>;

#[derive(Clone)]
struct Gate {
    routes: Routes,
    http: reqwest::Client,
}

/// A running gate; stopped when dropped.
pub struct ModelGate {
    addr: SocketAddr,
    routes: Routes,
    task: JoinHandle<()>,
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
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let routes = Routes::default();
        let gate = Gate {
            routes: routes.clone(),
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/{token}/{*rest}", axum::routing::any(forward))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(gate);
        // Streamed answers are many small writes: send each at once (no Nagle delay).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(error = %err, "the model gate stopped");
            }
        });
        Ok(Self { addr, routes, task })
    }

    /// Opens a route to `base_url` that adds `api_key` the way `kind` expects it.
    pub fn open(&self, base_url: &str, api_key: &str, kind: ProviderKind) -> Route {
        let token = crate::server::random_password();
        let upstream = Upstream {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
            kind,
        };
        if let Ok(mut routes) = self.routes.lock() {
            routes.insert(token.clone(), upstream);
        }
        Route {
            base_url: format!("http://{}/{token}", self.addr),
            token,
        }
    }

    /// Closes a route; later requests on it are refused.
    pub fn close(&self, token: &str) {
        if let Ok(mut routes) = self.routes.lock() {
            routes.remove(token);
        }
    }

    /// How many routes are open (for tests).
    pub fn open_routes(&self) -> usize {
        self.routes.lock().map(|r| r.len()).unwrap_or(0)
    }
}

impl Drop for ModelGate {
    fn drop(&mut self) {
        self.task.abort();
    }
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
        .and_then(|routes| routes.get(&token).cloned());
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
    request = match upstream.kind {
        ProviderKind::OpenAi => request.bearer_auth(&upstream.api_key),
        ProviderKind::Anthropic => request.header("x-api-key", &upstream.api_key),
    };
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(err) => {
            let message = format!("the model provider is unreachable: {err}");
            return refusal(StatusCode::BAD_GATEWAY, &message);
        }
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers().iter().filter(|(n, _)| !is_dropped(n)) {
        response = response.header(name.as_str(), value.as_bytes());
    }
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|_| refusal(StatusCode::BAD_GATEWAY, "unreadable provider answer"))
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
