//! The app's server-side prompt queue: list, remove, move, and resume after a hold.
//! Prompts join it through `POST …/runs` with `when_busy: "queue"`; the runner starts them.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use draftsmith_core::api::{MoveQueueItem, QueueState};
use draftsmith_core::{AppId, ErrorBody, QueueItemId};
use draftsmith_store::QueueTarget;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppIdPath, Json, path_param};
use crate::routes::apps::visible_app;
use crate::{AppState, Settings};

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queue))
        .routes(routes!(remove_item))
        .routes(routes!(move_item))
        .routes(routes!(resume_queue))
}

/// `{app_id}` and `{item_id}` of a queue item route, the app checked against the caller.
pub struct ItemRoute {
    /// The app.
    pub app: AppId,
    /// The item (it may no longer be queued).
    pub item: QueueItemId,
}

impl FromRequestParts<AppState> for ItemRoute {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let AppIdPath(app_id) = AppIdPath::from_request_parts(parts, state).await?;
        let app = visible_app(state, &caller, app_id).await?;
        let raw = path_param(parts, state, "item_id").await?;
        let item = raw.parse().map_err(|_| ApiError::not_found("queue item"))?;
        Ok(Self { app: app.id, item })
    }
}

/// The app's queue, next first, and whether a failed run holds it.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/queue", params(("app_id" = String, Path)),
    responses((status = 200, body = QueueState), (status = 404, body = ErrorBody)))]
async fn list_queue(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
) -> ApiResult<axum::Json<QueueState>> {
    visible_app(&state, &caller, app_id).await?;
    Ok(axum::Json(state.runner.queue(app_id).await?))
}

/// Remove a queued prompt.
#[utoipa::path(delete, path = "/admin/apps/{app_id}/coding-agent/queue/{item_id}",
    params(("app_id" = String, Path), ("item_id" = String, Path)),
    responses((status = 200, body = QueueState), (status = 404, body = ErrorBody)))]
async fn remove_item(
    State(state): State<AppState>,
    route: ItemRoute,
) -> ApiResult<axum::Json<QueueState>> {
    state.runner.remove_queued(route.app, route.item).await?;
    Ok(axum::Json(state.runner.queue(route.app).await?))
}

/// Move a queued prompt before another one or to a position.
#[utoipa::path(post, path = "/admin/apps/{app_id}/coding-agent/queue/{item_id}/move",
    params(("app_id" = String, Path), ("item_id" = String, Path)), request_body = MoveQueueItem,
    responses((status = 200, body = QueueState), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn move_item(
    State(state): State<AppState>,
    route: ItemRoute,
    Json(body): Json<MoveQueueItem>,
) -> ApiResult<axum::Json<QueueState>> {
    let target = match (body.before, body.position) {
        (Some(before), None) => QueueTarget::Before(before),
        (None, Some(position)) if position >= 1 => QueueTarget::Position(position),
        (None, Some(_)) => {
            return Err(ApiError::validation("position", "position starts at 1"));
        }
        _ => {
            return Err(ApiError::validation(
                "before",
                "give exactly one of before and position",
            ));
        }
    };
    let queue = state
        .runner
        .move_queued(route.app, route.item, target)
        .await?;
    Ok(axum::Json(queue))
}

/// Let a queue held by a failed run go on.
#[utoipa::path(post, path = "/admin/apps/{app_id}/coding-agent/queue/resume", params(("app_id" = String, Path)),
    responses((status = 202, body = QueueState), (status = 404, body = ErrorBody)))]
async fn resume_queue(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
) -> ApiResult<(StatusCode, axum::Json<QueueState>)> {
    visible_app(&state, &caller, app_id).await?;
    let queue = state.runner.resume_queue(app_id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(queue)))
}
