//! Steering a run: a message to a run while it works, saved as a chat message and the
//! run's `user.message` event and handed to its engine at the next model turn by whichever
//! instance executes it.

use axum::extract::State;
use axum::http::StatusCode;
use draftsmith_core::api::SteerRun;
use draftsmith_core::{ErrorBody, ErrorCode, RunEvent};
use draftsmith_store::StoreError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::routes::runs::{RunRoute, check_prompt_text};
use crate::{AppState, Settings};

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(steer_run))
}

/// Send a message to an active run: the native engine gives it to the model at its next
/// turn (one more turn when the model had just answered); OpenCode makes it the session's
/// next prompt. Answers the run's `user.message` event.
#[utoipa::path(post, path = "/admin/apps/{app_id}/coding-agent/runs/{run_id}/messages",
    params(("app_id" = String, Path), ("run_id" = String, Path)), request_body = SteerRun,
    responses((status = 202, body = RunEvent), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn steer_run(
    State(state): State<AppState>,
    caller: Caller,
    route: RunRoute,
    Json(body): Json<SteerRun>,
) -> ApiResult<(StatusCode, axum::Json<RunEvent>)> {
    let run = route.run;
    // The message joins the run's chat session, which is its creator's alone.
    if run.created_by != caller.user_id {
        return Err(ApiError::not_found("run"));
    }
    check_prompt_text("text", &body.text)?;
    let not_active = |status: String| {
        ApiError::new(
            ErrorCode::CodingAgentRunNotActive,
            "the run has ended; start a new run instead",
        )
        .detail("run_id", run.run_id.to_string())
        .detail("status", status)
    };
    if run.status.is_terminal() {
        return Err(not_active(run.status.as_str().to_owned()));
    }
    match state.runner.steer(run.run_id, &body.text).await {
        Ok(event) => Ok((StatusCode::ACCEPTED, axum::Json(event))),
        Err(StoreError::RunEnded) => {
            let ended = state.store.run(run.run_id).await?;
            Err(not_active(ended.status.as_str().to_owned()))
        }
        Err(err) => Err(err.into()),
    }
}
