//! The live preview of an app for the builder's iframe. `POST …/preview` mints a
//! short-lived capability URL `/preview/{app_id}/{token}/…`, so the page's relative
//! assets load without cookies; every answer carries a `sandbox` CSP, so the app's own
//! scripts run in an opaque origin and cannot use the builder's session. The files are the
//! sandbox's built output (`dist/`) when the app's latest chat workspace has one on this
//! host, else the draft's own files (which is all a `static` app needs).

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use draftsmith_core::{AppId, DraftPath, ErrorBody, ErrorCode, Timestamp};
use draftsmith_sandbox::SandboxId;
use draftsmith_store::Principal;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, hash_secret, new_secret};
use crate::error::{ApiError, ApiResult};
use crate::extract::AppIdPath;
use crate::routes::apps::visible_app;
use crate::{AppState, Settings};

/// How long a preview URL works.
const PREVIEW_SECONDS: i64 = 3600;
/// What the preview's pages may do: run scripts and forms, never share the builder's origin.
const SANDBOX_CSP: &str = "sandbox allow-scripts allow-forms allow-popups allow-modals";

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_preview))
        .routes(routes!(preview_file))
        .route(
            "/preview/{app_id}/{token}/",
            axum::routing::get(preview_index),
        )
}

/// A preview URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewSession {
    /// Where the preview's `index.html` is served (relative to the server).
    pub url: String,
    /// `build` (the sandbox's `dist/`) or `draft` (the draft's files).
    pub source: String,
    /// The draft revision at the time the URL was made.
    pub revision: i64,
    /// With `build`: the draft revision the build was made from (older than `revision`
    /// when the draft changed since).
    pub built_revision: Option<i64>,
    /// When the URL stops working.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// Make a short-lived URL that serves the app's preview.
#[utoipa::path(post, path = "/admin/apps/{app_id}/preview", params(("app_id" = String, Path)),
    responses((status = 200, body = PreviewSession), (status = 404, body = ErrorBody)))]
async fn create_preview(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
) -> ApiResult<axum::Json<PreviewSession>> {
    visible_app(&state, &caller, app_id).await?;
    let token = new_secret("dsp_")?;
    let expires_at =
        Timestamp::from_micros(Timestamp::now().as_micros() + PREVIEW_SECONDS * 1_000_000);
    let who = Principal {
        user_id: caller.user_id,
        role: caller.role,
    };
    state
        .store
        .insert_web_session(&preview_hash(&token), &who, expires_at)
        .await?;
    let build = build_dir(&state, app_id).await?;
    let source = if build.is_some() { "build" } else { "draft" };
    Ok(axum::Json(PreviewSession {
        url: format!("/preview/{app_id}/{token}/"),
        source: source.into(),
        revision: state.store.draft(app_id).await?.revision,
        built_revision: build.map(|b| b.revision),
        expires_at,
    }))
}

/// Stored apart from cookies: a preview token never works as a session, nor the reverse.
fn preview_hash(token: &str) -> String {
    hash_secret(&format!("preview:{token}"))
}

/// One file of the preview.
#[utoipa::path(get, path = "/preview/{app_id}/{token}/{*path}", security(()),
    params(("app_id" = String, Path), ("token" = String, Path), ("path" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream"), (status = 404, body = ErrorBody)))]
async fn preview_file(
    State(state): State<AppState>,
    UrlPath((app_id, token, path)): UrlPath<(String, String, String)>,
) -> ApiResult<Response> {
    serve(&state, &app_id, &token, &path).await
}

async fn preview_index(
    State(state): State<AppState>,
    UrlPath((app_id, token)): UrlPath<(String, String)>,
) -> ApiResult<Response> {
    serve(&state, &app_id, &token, "index.html").await
}

async fn serve(state: &AppState, app_id: &str, token: &str, path: &str) -> ApiResult<Response> {
    let app_id: AppId = app_id.parse().map_err(|_| ApiError::not_found("app"))?;
    let who = state
        .store
        .find_web_session(&preview_hash(token), Timestamp::now())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "the preview link has expired; reload the preview",
            )
        })?;
    let app = visible_app(state, &Caller::from(who), app_id).await?;
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_owned()
    };
    let path = DraftPath::parse(&path)?;
    let (bytes, revision) = match build_dir(state, app.id).await? {
        Some(build) => (read_inside(&build.dir, path.as_str()).await?, None),
        None => {
            let (revision, _, content) = state.store.read_file(app.id, &path).await?;
            (content, Some(revision))
        }
    };
    let mime = mime_guess::from_path(path.as_str()).first_or_octet_stream();
    let mut headers = HeaderMap::new();
    let value = |s: &str| HeaderValue::from_str(s).map_err(|e| ApiError::internal("header", &e));
    headers.insert(header::CONTENT_TYPE, value(mime.essence_str())?);
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SANDBOX_CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The sandboxed page has an opaque origin, so its module scripts (Vite's output) are
    // cross-origin CORS fetches; the URL is the credential, so any origin may read it.
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if let Some(revision) = revision {
        headers.insert(
            super::drafts::REVISION_HEADER,
            value(&revision.to_string())?,
        );
    }
    Ok((StatusCode::OK, headers, bytes).into_response())
}

/// A build found in a chat workspace.
struct Build {
    /// Its `dist/`.
    dir: PathBuf,
    /// The draft revision the run that left it ended on.
    revision: i64,
}

/// The built output of the app's latest chat workspace, when it is on this host.
async fn build_dir(state: &AppState, app: AppId) -> ApiResult<Option<Build>> {
    let Some(run) = state.store.runs(app, 1, None).await?.into_iter().next() else {
        return Ok(None);
    };
    let Ok(id) = SandboxId::for_chat(&run.chat_session_id.to_string()) else {
        return Ok(None);
    };
    let Some(workspace) = state.runner.controller().workspace_dir(&id) else {
        return Ok(None);
    };
    let dist = workspace.join("dist");
    let found = tokio::fs::try_exists(dist.join("index.html"))
        .await
        .unwrap_or(false);
    Ok(found.then(|| Build {
        dir: dist,
        revision: run.result_revision.unwrap_or(run.base_revision),
    }))
}

/// Reads `relative` under `root`, refusing anything a symlink takes outside it.
async fn read_inside(root: &Path, relative: &str) -> ApiResult<Vec<u8>> {
    let missing = || ApiError::not_found("file");
    let root = tokio::fs::canonicalize(root).await.map_err(|_| missing())?;
    let file = tokio::fs::canonicalize(root.join(relative))
        .await
        .map_err(|_| missing())?;
    if !file.starts_with(&root) {
        return Err(missing());
    }
    tokio::fs::read(&file).await.map_err(|_| missing())
}
