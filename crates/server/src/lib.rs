//! The HTTP API of draftsmith: axum routes over a [`Store`], one error envelope, auth by
//! bearer token or session cookie, and an OpenAPI document generated from the handlers.

pub mod auth;
pub mod edge;
pub mod error;
pub mod extract;
mod openapi;
pub mod routes;
pub mod sites;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use draftsmith_core::ErrorCode;
use draftsmith_store::Store;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tower::Service;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;

/// Limits and switches the routes read at request time.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest draft file accepted.
    pub max_file_bytes: usize,
    /// Largest JSON body accepted.
    pub max_json_bytes: usize,
    /// Limits of the HTTP edge (timeouts, connection cap, proxy trust).
    pub http: edge::HttpConfig,
    /// Published apps are also served at `{slug}.{apps_domain}` when set.
    pub apps_domain: Option<String>,
    /// What uploads may be.
    pub uploads: routes::uploads::UploadsConfig,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Limits.
    pub settings: Arc<Settings>,
    /// Executes runs.
    pub runner: draftsmith_runner::Runner,
    /// What published apps are served from.
    pub sites: Arc<sites::Sites>,
}

/// The whole API as one router, with the OpenAPI document served at `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let (api_router, api) = openapi::routes(&state.settings).split_for_parts();
    let api = Arc::new(openapi::finish(api));
    api_router
        .route(
            "/openapi.json",
            axum::routing::get(
                move |axum::extract::State(state): axum::extract::State<AppState>| {
                    let api = api.clone();
                    async move { axum::Json(openapi::live(&api, &state)) }
                },
            ),
        )
        .merge(routes::web::router())
        .merge(routes::metrics::router())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        // JSON bodies are small; the file routes set their own, larger limit inside this one.
        .layer(DefaultBodyLimit::max(state.settings.max_json_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.settings.http.body_timeout(),
            edge::body::body_deadline,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    let mut response = ApiError::new(ErrorCode::Internal, "internal error").into_response();
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// Serves `state` on `listener` until `shutdown` resolves, then drains open requests; the
/// edge's limits come from `state.settings.http`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.settings.http.clone();
    edge::serve(listener, Front::new(state), limits, shutdown).await
}

/// What the edge serves: a published app's files straight from memory, without the API's
/// layers and routing (they are served like a static file server's, and as often), and
/// everything else through the API's router.
#[derive(Clone)]
pub struct Front {
    state: Arc<AppState>,
    api: Router,
}

impl Front {
    /// The front of `state`'s API.
    pub fn new(state: AppState) -> Self {
        Self {
            api: router(state.clone()),
            state: Arc::new(state),
        }
    }
}

impl Service<Request<Body>> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let Some(claim) = routes::published::claim(&self.state.settings, &request) else {
            return Box::pin(self.api.call(request));
        };
        let state = self.state.clone();
        let (head, _) = request.into_parts();
        Box::pin(async move {
            let answer =
                std::panic::AssertUnwindSafe(routes::published::answer_claim(&state, claim, &head))
                    .catch_unwind()
                    .await;
            Ok(answer.unwrap_or_else(panic_response))
        })
    }
}
