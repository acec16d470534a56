//! Liveness for load balancers: answers only when the database does.

use axum::extract::State;
use draftsmith_core::api::Health;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Service health.
#[utoipa::path(get, path = "/healthz", security(()), responses((status = 200, body = Health)))]
async fn health(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    state.store.ping().await?;
    Ok(axum::Json(Health {
        status: "ok".into(),
        store: state.store.backend().as_str().into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}
