//! Chat sessions: a user's conversations on an app, with their messages. Another user's
//! session is a 404.

use axum::extract::State;
use draftsmith_core::api::{ChatSessionDetail, ChatSessionList};
use draftsmith_core::{ChatSessionId, ErrorBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppIdPath;
use crate::routes::apps::visible_app;
use crate::{AppState, Settings};

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(get_session))
}

/// The caller's chat sessions on the app, most recent first.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/chat-sessions", params(("app_id" = String, Path)),
    responses((status = 200, body = ChatSessionList)))]
async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
) -> ApiResult<axum::Json<ChatSessionList>> {
    visible_app(&state, &caller, app_id).await?;
    let sessions = state.store.chat_sessions(app_id, &caller.user_id).await?;
    Ok(axum::Json(ChatSessionList { sessions }))
}

/// One of the caller's sessions with its messages.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/chat-sessions/{session_id}",
    params(("app_id" = String, Path), ("session_id" = String, Path)),
    responses((status = 200, body = ChatSessionDetail), (status = 404, body = ErrorBody)))]
async fn get_session(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
    axum::extract::Path((_, session_id)): axum::extract::Path<(String, String)>,
) -> ApiResult<axum::Json<ChatSessionDetail>> {
    visible_app(&state, &caller, app_id).await?;
    let id: ChatSessionId = session_id
        .parse()
        .map_err(|_| ApiError::not_found("chat session"))?;
    let session = state.store.chat_session(id).await?;
    if session.app_id != app_id || session.user_id != caller.user_id {
        return Err(ApiError::not_found("chat session"));
    }
    let messages = state.store.chat_messages(id).await?;
    Ok(axum::Json(ChatSessionDetail { session, messages }))
}
