//! The HTTP side: the routes of a mock model server and its lifetime; what one model request
//! gets is decided in `answer`, how it is sent in `playback`.

mod answer;
mod playback;
mod state;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::watch;

use crate::request::Dialect;
use answer::{Request, handle};
use playback::error_response;
use state::App;

pub(crate) use state::Shared;

/// The model name listed by `GET /v1/models`.
pub(crate) const MODEL_NAME: &str = "coder";

/// Largest request body accepted; agent histories get big.
const BODY_LIMIT: usize = 256 * 1024 * 1024;

/// Serves `shared` on `listener` until `shutdown` completes; open streams are then cut.
pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = App {
        shared,
        stop: stop_rx,
    };
    let router = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(models))
        .route("/_mock/requests", get(recorded))
        .route("/_mock/violations", get(violations))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app);
    // Like a real provider: every streamed chunk leaves at once (no Nagle delay).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await
}

async fn chat_completions(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request {
        dialect: Dialect::OpenAi,
        path: uri.path(),
        credential: credential(&headers),
    };
    handle(&app, request, &body).await
}

async fn messages(State(app): State<App>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request = Request {
        dialect: Dialect::Anthropic,
        path: uri.path(),
        credential: credential(&headers),
    };
    handle(&app, request, &body).await
}

/// The API key a request carries: `Authorization: Bearer …` (OpenAI) or `x-api-key`
/// (Anthropic).
fn credential(headers: &HeaderMap) -> Option<String> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    value("authorization")
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_owned())
        .or_else(|| value("x-api-key").map(str::to_owned))
}

async fn models() -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{
            "id": MODEL_NAME,
            "object": "model",
            "created": 0,
            "owned_by": "draftsmith-mockmodel",
        }],
    }))
    .into_response()
}

async fn recorded(State(app): State<App>) -> Response {
    axum::Json(app.shared.requests()).into_response()
}

async fn violations(State(app): State<App>) -> Response {
    axum::Json(app.shared.violations()).into_response()
}

async fn not_found(uri: Uri) -> Response {
    let message = format!("mock-model: no route for {}", uri.path());
    error_response(Dialect::OpenAi, 404, None, &message, None)
}
