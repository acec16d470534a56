//! The live preview's state: which chat's sandbox serves an app's live preview, its dev
//! server started and awaited for a request, and `GET …/preview/live` for the builder.

use axum::extract::State;
use draftsmith_core::api::App;
use draftsmith_core::{ChatSessionId, ErrorBody, ErrorCode};
use draftsmith_sandbox::{DevServerState, DevServerStatus, SandboxId};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppIdPath;
use crate::routes::apps::visible_app;

/// The secret prefix of a live preview's token.
pub(super) const LIVE_TOKEN: &str = "dsl_";

/// The chat whose sandbox serves `app`'s live preview (its latest run's), when its template
/// has a live preview and this host can serve it.
pub(super) async fn live_session(state: &AppState, app: &App) -> ApiResult<Option<ChatSessionId>> {
    if draftsmith_templates::find(&app.template).is_none() {
        return Ok(None);
    }
    let run = state.store.runs(app.id, 1, None).await?.into_iter().next();
    let controller = state.runner.controller();
    Ok(run.map(|r| r.chat_session_id).filter(|session| {
        controller
            .workspace_dir(&SandboxId::for_chat(*session))
            .is_some()
    }))
}

/// What the live preview's dev server is doing.
#[derive(Debug, Serialize, ToSchema)]
pub struct LivePreview {
    /// `none` (no chat sandbox has one), `starting`, `live`, `crashed` or `stopped`.
    pub state: String,
    /// How often it was restarted after a crash.
    pub restarts: u32,
    /// Its last lines of output, oldest first.
    pub output: Vec<String>,
}

/// The state of the app's live preview dev server (for the builder to show).
#[utoipa::path(get, path = "/admin/apps/{app_id}/preview/live", params(("app_id" = String, Path)),
    responses((status = 200, body = LivePreview), (status = 404, body = ErrorBody)))]
pub(super) async fn live_status(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
) -> ApiResult<axum::Json<LivePreview>> {
    let app = visible_app(&state, &caller, app_id).await?;
    let status = match live_session(&state, &app).await? {
        Some(session) => state
            .runner
            .controller()
            .dev_server(&SandboxId::for_chat(session), None)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    Ok(axum::Json(match status {
        Some(status) => LivePreview {
            state: state_name(status.state).into(),
            restarts: status.restarts,
            output: status.output,
        },
        None => LivePreview {
            state: "none".into(),
            restarts: 0,
            output: Vec::new(),
        },
    }))
}

fn state_name(state: DevServerState) -> &'static str {
    match state {
        DevServerState::Starting => "starting",
        DevServerState::Live => "live",
        DevServerState::Crashed => "crashed",
        DevServerState::Stopped => "stopped",
    }
}

/// The app's dev server, started (and awaited) unless it is live; a dev server that does
/// not come up is a `CODING_AGENT_SANDBOX_FAILED` naming its last output.
pub(super) async fn dev_server(
    state: &AppState,
    app: &App,
    session: ChatSessionId,
) -> ApiResult<DevServerStatus> {
    let failed = |message: String| ApiError::new(ErrorCode::CodingAgentSandboxFailed, message);
    let status = state
        .runner
        .live_preview(app, session)
        .await
        .map_err(|e| failed(format!("the live preview could not start: {e}")))?
        .ok_or_else(|| failed("this host cannot serve the app's dev server".into()))?;
    if status.state != DevServerState::Live {
        return Err(failed(format!(
            "the app's dev server is {}: {}",
            state_name(status.state),
            status.output.join("\n")
        )));
    }
    Ok(status)
}
