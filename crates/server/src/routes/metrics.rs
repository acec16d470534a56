//! `GET /metrics`: this instance's Prometheus metrics in the text format, on the main
//! listener behind an admin token (a scraper sends `Authorization: Bearer …`). Not part of
//! the JSON API, so not in the OpenAPI document; 404 when `[metrics] enabled = false`.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use draftsmith_core::ErrorCode;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// The exposition's content type (text format 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require_admin()?;
    match state.runner.render_metrics().await? {
        Some(text) => Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            "metrics are off on this instance",
        )),
    }
}
