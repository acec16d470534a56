//! The coding-agent run family: create (engine and model resolved before anything is
//! persisted), list, get, cancel, plus the capabilities and models the policy allows.

use std::time::Instant;

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use draftsmith_core::api::{
    App, Capabilities, CreateRun, ModelList, NativeToolInfo, QueuedPrompt, Run, RunList, WhenBusy,
};
use draftsmith_core::{ErrorBody, ErrorCode, RunId, Timestamp};
use draftsmith_runner::attachments::AttachmentError;
use draftsmith_runner::{BudgetError, CreateRunError, Submitted, Throttled};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppIdPath, Json, Query, page_limit, parse_cursor, path_param};
use crate::routes::apps::visible_app;
use crate::{AppState, Settings};

/// Longest prompt accepted, in characters.
const MAX_INPUT_CHARS: usize = 100_000;
/// Default and largest page of `GET runs`.
const PAGE: i64 = 50;

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_run, list_runs))
        .routes(routes!(get_run))
        .routes(routes!(cancel_run))
        .routes(routes!(capabilities))
        .routes(routes!(models))
}

/// `{app_id}` and `{run_id}` of a run route, checked against the caller and each other.
pub struct RunRoute {
    /// The app.
    pub app: App,
    /// The run.
    pub run: Run,
}

impl FromRequestParts<AppState> for RunRoute {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let AppIdPath(app_id) = AppIdPath::from_request_parts(parts, state).await?;
        let app = visible_app(state, &caller, app_id).await?;
        let raw = path_param(parts, state, "run_id").await?;
        let run_id: RunId = raw.parse().map_err(|_| ApiError::not_found("run"))?;
        let run = state.store.run(run_id).await?;
        if run.app_id != app.id {
            return Err(ApiError::not_found("run"));
        }
        Ok(Self { app, run })
    }
}

/// Start a run for a prompt; with `when_busy: "queue"`, queue it while a run is active.
#[utoipa::path(post, path = "/admin/apps/{app_id}/coding-agent/runs", params(("app_id" = String, Path)),
    request_body = CreateRun,
    responses((status = 201, body = Run), (status = 202, description = "queued (`when_busy: \"queue\"` while a run is active)", body = QueuedPrompt),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn create_run(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
    Json(body): Json<CreateRun>,
) -> ApiResult<Response> {
    let clock = Instant::now();
    let app = visible_app(&state, &caller, app_id).await?;
    check_input(&body.input)?;
    let (run, api_timing) = if body.when_busy == Some(WhenBusy::Queue) {
        match state.runner.submit(&app, &caller.user_id, body).await {
            Ok(Submitted::Started(run, api)) => (*run, api),
            Ok(Submitted::Queued(item)) => {
                return Ok((StatusCode::ACCEPTED, axum::Json(item)).into_response());
            }
            Err(err) => return Err(create_error(err)),
        }
    } else {
        state
            .runner
            .create(&app, &caller.user_id, body)
            .await
            .map_err(create_error)?
    };
    let _ = api_timing.send(clock.elapsed().as_millis() as u64);
    Ok((StatusCode::CREATED, axum::Json(run)).into_response())
}

/// A prompt's length rule, for runs and queued prompts alike.
pub(crate) fn check_input(input: &str) -> ApiResult<()> {
    check_prompt_text("input", input)
}

/// The length rule of anything a person writes to the agent, `field` named in the error.
pub(crate) fn check_prompt_text(field: &'static str, text: &str) -> ApiResult<()> {
    let chars = text.chars().count();
    if text.trim().is_empty() || chars > MAX_INPUT_CHARS {
        return Err(ApiError::validation(
            field,
            format!("{field} must be 1-{MAX_INPUT_CHARS} characters of prompt"),
        ));
    }
    Ok(())
}

/// The 400s, 409s, 429s and 503s of a refused run (or queued prompt).
pub(crate) fn create_error(err: CreateRunError) -> ApiError {
    match err {
        CreateRunError::EngineUnavailable(why) => {
            ApiError::new(ErrorCode::CodingAgentEngineUnavailable, why).detail("field", "engine")
        }
        CreateRunError::ModelUnavailable(why) => {
            ApiError::new(ErrorCode::CodingAgentModelUnavailable, why).detail("field", "model_id")
        }
        CreateRunError::Budget(err) => budget_error(err),
        CreateRunError::Attachment(err) => attachment_error(err),
        CreateRunError::Throttled(err) => throttled(err),
        CreateRunError::Store(err) => err.into(),
    }
}

/// A refused attachment: 404 for an upload the caller cannot see, 400 otherwise.
fn attachment_error(err: AttachmentError) -> ApiError {
    let message = err.to_string();
    match err {
        AttachmentError::Invalid(_) => ApiError::validation("attachments", message),
        AttachmentError::NotFound(id) => ApiError::new(ErrorCode::NotFound, message)
            .detail("field", "attachments")
            .detail("upload_id", id),
        AttachmentError::Unsupported(_) => {
            ApiError::new(ErrorCode::CodingAgentAttachmentUnsupported, message)
                .detail("field", "attachments")
        }
        AttachmentError::Path { index, error } => {
            ApiError::from(error).detail("field", format!("attachments[{index}].into"))
        }
        AttachmentError::Store(err) => err.into(),
    }
}

/// A fair-use refusal: 429 `RATE_LIMITED` for a user's limits, 503 for a full instance,
/// each with `Retry-After`.
fn throttled(err: Throttled) -> ApiError {
    let message = err.to_string();
    match err {
        Throttled::UserActiveRuns { limit, retry_after } => {
            ApiError::new(ErrorCode::RateLimited, message)
                .detail("limit", "user_active_runs")
                .detail("max", limit)
                .retry_after(retry_after)
        }
        Throttled::UserRate { limit, retry_after } => {
            ApiError::new(ErrorCode::RateLimited, message)
                .detail("limit", "user_runs_per_minute")
                .detail("max", limit)
                .retry_after(retry_after)
        }
        Throttled::InstanceFull { limit, retry_after } => {
            ApiError::new(ErrorCode::ServiceUnavailable, message)
                .detail("limit", "instance_sandboxes")
                .detail("max", limit)
                .retry_after(retry_after)
        }
        Throttled::Store(err) => err.into(),
    }
}

/// A budget's refusal: a request above the ceiling is invalid; a spent user budget is
/// 429 naming the budget and when it resets (also as `Retry-After`).
fn budget_error(err: BudgetError) -> ApiError {
    match err {
        BudgetError::AboveCeiling { field, .. } => ApiError::validation(field, err.to_string()),
        BudgetError::Spent {
            budget,
            limit,
            spent,
            resets_at,
        } => {
            let wait = (resets_at.as_micros() - Timestamp::now().as_micros()).max(0) / 1_000_000;
            ApiError::new(ErrorCode::CodingAgentBudgetExceeded, err.to_string())
                .detail("budget", budget)
                .detail("limit_micro_usd", limit)
                .detail("spent_micro_usd", spent)
                .detail("resets_at", resets_at.to_rfc3339())
                .retry_after(wait as u64)
        }
        BudgetError::Store(err) => err.into(),
    }
}

/// Paging of `GET runs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Page size (1-50).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<i64>,
    /// `next_before` of the previous page.
    #[param(
        pattern = "^[0-9]{1,18}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    before: Option<String>,
}

/// The app's runs, newest first.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/runs", params(("app_id" = String, Path), ListQuery),
    responses((status = 200, body = RunList)))]
async fn list_runs(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
    Query(query): Query<ListQuery>,
) -> ApiResult<axum::Json<RunList>> {
    visible_app(&state, &caller, app_id).await?;
    let limit = page_limit(query.limit, PAGE)?;
    let before = query
        .before
        .as_deref()
        .map(parse_cursor::<RunId>)
        .transpose()?;
    let runs = state.store.runs(app_id, limit + 1, before).await?;
    let more = runs.len() as i64 > limit;
    let runs: Vec<Run> = runs.into_iter().take(limit as usize).collect();
    let next_before = more
        .then(|| {
            runs.last()
                .map(|r| format!("{}_{}", r.created_at.as_micros(), r.run_id))
        })
        .flatten();
    Ok(axum::Json(RunList { runs, next_before }))
}

/// One run.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/runs/{run_id}",
    params(("app_id" = String, Path), ("run_id" = String, Path)),
    responses((status = 200, body = Run), (status = 404, body = ErrorBody)))]
async fn get_run(route: RunRoute) -> axum::Json<Run> {
    axum::Json(route.run)
}

/// Cancel a run; it ends `cancelled` and every process it started is killed.
#[utoipa::path(post, path = "/admin/apps/{app_id}/coding-agent/runs/{run_id}/cancel",
    params(("app_id" = String, Path), ("run_id" = String, Path)),
    responses((status = 202, body = Run), (status = 404, body = ErrorBody)))]
async fn cancel_run(
    State(state): State<AppState>,
    caller: Caller,
    route: RunRoute,
) -> ApiResult<(StatusCode, axum::Json<Run>)> {
    state
        .runner
        .cancel(route.run.run_id, &caller.user_id)
        .await?;
    let run = state.store.run(route.run.run_id).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(run)))
}

/// What the coding agent can do here.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/capabilities", params(("app_id" = String, Path)),
    responses((status = 200, body = Capabilities)))]
async fn capabilities(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
) -> ApiResult<axum::Json<Capabilities>> {
    visible_app(&state, &caller, app_id).await?;
    let policy = state.runner.policy();
    let native_tools: Vec<NativeToolInfo> = draftsmith_tools::tool_specs()
        .iter()
        .map(|s| NativeToolInfo {
            name: s.name.into(),
            slug: s.slug.into(),
            function_name: s.function_name.into(),
        })
        .collect();
    let (sandbox_egress, sandbox_egress_allow) = state.runner.controller().egress();
    Ok(axum::Json(Capabilities {
        default_engine: policy.default_engine,
        native_enabled: policy.native_enabled,
        native_tool_count: native_tools.len(),
        native_tools,
        opencode_policy: draftsmith_opencode::policy()
            .into_api(policy.opencode_unavailable.clone()),
        models: state.runner.registry().list(),
        sandbox_isolation: state.runner.controller().isolation().as_str().into(),
        sandbox_limits: state.runner.controller().limits().map(|r| r.to_api()),
        sandbox_egress,
        sandbox_egress_allow,
    }))
}

/// The model registry and what `auto` resolves to.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/models", params(("app_id" = String, Path)),
    responses((status = 200, body = ModelList)))]
async fn models(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
) -> ApiResult<axum::Json<ModelList>> {
    visible_app(&state, &caller, app_id).await?;
    Ok(axum::Json(state.runner.registry().list()))
}
