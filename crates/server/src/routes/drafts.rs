//! Drafts: the manifest, and file reads and writes guarded by `If-Match: <revision>` so a
//! stale writer gets a conflict instead of overwriting someone else's change.

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use draftsmith_core::api::{Draft, FileChanged};
use draftsmith_core::{AppId, DraftPath, ErrorBody};
use draftsmith_store::FileChange;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppIdPath, Query, RawBody, path_param};
use crate::routes::apps::visible_app;
use crate::{AppState, Settings};

/// Header carrying the draft revision a response describes.
pub const REVISION_HEADER: &str = "x-draft-revision";

pub fn router(settings: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_draft))
        .routes(routes!(read_file, write_file, delete_file))
        // Files may be larger than JSON bodies; this inner limit overrides the outer one.
        .layer(DefaultBodyLimit::max(settings.max_file_bytes))
}

/// `?revision=N` asks for an earlier revision's manifest.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DraftQuery {
    /// Revision to list instead of the current one.
    revision: Option<i64>,
}

/// The draft's revision and file list (the current one, or `?revision=N`).
#[utoipa::path(get, path = "/admin/apps/{app_id}/draft", params(("app_id" = String, Path), DraftQuery),
    responses((status = 200, body = Draft), (status = 404, body = ErrorBody)))]
async fn get_draft(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app): AppIdPath,
    Query(query): Query<DraftQuery>,
) -> ApiResult<axum::Json<Draft>> {
    visible_app(&state, &caller, app).await?;
    let manifest = match query.revision {
        Some(revision) => state.store.manifest_at(app, revision).await?,
        None => state.store.draft(app).await?,
    };
    Ok(axum::Json(Draft {
        app_id: app,
        revision: manifest.revision,
        files: manifest.files,
    }))
}

/// `{app_id}` and the validated `{*path}` of a file route.
struct FileRoute {
    app: AppId,
    path: DraftPath,
}

impl FromRequestParts<AppState> for FileRoute {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AppIdPath(app) = AppIdPath::from_request_parts(parts, state).await?;
        let raw = path_param(parts, state, "path").await?;
        Ok(Self {
            app,
            path: DraftPath::parse(&raw)?,
        })
    }
}

/// A file's bytes; `x-draft-revision` tells which revision they belong to.
#[utoipa::path(get, path = "/admin/apps/{app_id}/draft/files/{*path}",
    params(("app_id" = String, Path), ("path" = String, Path, description = "file path; may contain '/'. The pattern is a safe subset of what the path policy accepts (no hidden, blocked or generated paths); anything the policy refuses is 400 CODING_AGENT_PATH_BLOCKED", pattern = "^(?!(?:.*/)?(?:[dD][iI][sS][tT]|[nN][oO][dD][eE]_[mM][oO][dD][uU][lL][eE][sS])(?:/|$))(?:[A-Za-z0-9_][A-Za-z0-9_-]{0,15}/){0,3}[A-Za-z0-9_][A-Za-z0-9_-]{0,15}\\.[a-z0-9]{1,6}$")),
    responses((status = 200, description = "the file's bytes, typed by its extension", content_type = "*/*", body = Vec<u8>),
        (status = 404, body = ErrorBody)))]
async fn read_file(
    State(state): State<AppState>,
    caller: Caller,
    route: FileRoute,
) -> ApiResult<Response> {
    visible_app(&state, &caller, route.app).await?;
    let (revision, file, content) = state.store.read_file(route.app, &route.path).await?;
    let mime = mime_guess::from_path(route.path.as_str()).first_or_octet_stream();
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, header_value(mime.essence_str())?);
    headers.insert(header::ETAG, header_value(&format!("\"{}\"", file.sha256))?);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REVISION_HEADER, header_value(&revision.to_string())?);
    Ok((headers, content).into_response())
}

/// Create or replace a file; needs `If-Match: <revision>` (or `*`).
#[utoipa::path(put, path = "/admin/apps/{app_id}/draft/files/{*path}",
    params(("app_id" = String, Path), ("path" = String, Path, description = "file path; may contain '/'. The pattern is a safe subset of what the path policy accepts (no hidden, blocked or generated paths); anything the policy refuses is 400 CODING_AGENT_PATH_BLOCKED", pattern = "^(?!(?:.*/)?(?:[dD][iI][sS][tT]|[nN][oO][dD][eE]_[mM][oO][dD][uU][lL][eE][sS])(?:/|$))(?:[A-Za-z0-9_][A-Za-z0-9_-]{0,15}/){0,3}[A-Za-z0-9_][A-Za-z0-9_-]{0,15}\\.[a-z0-9]{1,6}$"),
        ("If-Match" = String, Header, description = "the draft revision the change is based on, or `*`", pattern = "^([*]|[0-9]{1,15})$")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = FileChanged), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 428, body = ErrorBody)))]
async fn write_file(
    State(state): State<AppState>,
    caller: Caller,
    route: FileRoute,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    visible_app(&state, &caller, route.app).await?;
    let expected = if_match(&headers)?;
    let change = FileChange {
        path: route.path.clone(),
        content: Some(body.to_vec()),
    };
    let written = state
        .store
        .write_draft(route.app, expected, vec![change], &caller.user_id)
        .await?;
    state.runner.follow_draft(route.app).await;
    let (_, file, _) = state.store.read_file(route.app, &route.path).await?;
    changed(route.app, written.revision, route.path, Some(file))
}

/// Delete a file; needs `If-Match: <revision>` (or `*`).
#[utoipa::path(delete, path = "/admin/apps/{app_id}/draft/files/{*path}",
    params(("app_id" = String, Path), ("path" = String, Path, description = "file path; may contain '/'. The pattern is a safe subset of what the path policy accepts (no hidden, blocked or generated paths); anything the policy refuses is 400 CODING_AGENT_PATH_BLOCKED", pattern = "^(?!(?:.*/)?(?:[dD][iI][sS][tT]|[nN][oO][dD][eE]_[mM][oO][dD][uU][lL][eE][sS])(?:/|$))(?:[A-Za-z0-9_][A-Za-z0-9_-]{0,15}/){0,3}[A-Za-z0-9_][A-Za-z0-9_-]{0,15}\\.[a-z0-9]{1,6}$"),
        ("If-Match" = String, Header, description = "the draft revision the change is based on, or `*`", pattern = "^([*]|[0-9]{1,15})$")),
    responses((status = 200, body = FileChanged), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 428, body = ErrorBody)))]
async fn delete_file(
    State(state): State<AppState>,
    caller: Caller,
    route: FileRoute,
    headers: HeaderMap,
) -> ApiResult<Response> {
    visible_app(&state, &caller, route.app).await?;
    let expected = if_match(&headers)?;
    let change = FileChange {
        path: route.path.clone(),
        content: None,
    };
    let written = state
        .store
        .write_draft(route.app, expected, vec![change], &caller.user_id)
        .await?;
    if written.changes.deleted.is_empty() {
        return Err(ApiError::not_found("file"));
    }
    state.runner.follow_draft(route.app).await;
    changed(route.app, written.revision, route.path, None)
}

fn changed(
    app: AppId,
    revision: i64,
    path: DraftPath,
    file: Option<draftsmith_core::api::DraftFile>,
) -> ApiResult<Response> {
    let body = FileChanged {
        app_id: app,
        revision,
        path: path.into_string(),
        file,
    };
    let mut headers = HeaderMap::new();
    headers.insert(REVISION_HEADER, header_value(&revision.to_string())?);
    Ok((headers, axum::Json(body)).into_response())
}

/// `If-Match: 3`, `"3"` or `W/"3"` expects revision 3; `*` accepts any revision.
fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Err(ApiError::validation(
            "If-Match",
            "writes need 'If-Match: <revision>' (the draft revision they are based on), or '*'",
        )
        .with_status(StatusCode::PRECONDITION_REQUIRED));
    };
    let text = raw.to_str().unwrap_or_default().trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse::<i64>().map(Some).map_err(|_| {
        ApiError::validation(
            "If-Match",
            format!("expected a draft revision, got {text:?}"),
        )
    })
}

fn header_value(s: &str) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(s).map_err(|e| ApiError::internal("header", &e))
}
