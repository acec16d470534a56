//! The live preview of an app for the builder's iframe. `POST …/preview` mints a
//! short-lived capability URL `/preview/{app_id}/{token}/…`, so the page's relative
//! assets load without cookies; every answer carries a `sandbox` CSP, so the app's own
//! scripts run in an opaque origin and cannot use the builder's session. The files are the
//! sandbox's built output (`dist/`) when the app's latest chat workspace has one on this
//! host, else the draft's own files (which is all a `static` app needs).
//!
//! A *live* preview (`?live=true`, token `dsl_…`) serves the app's dev server instead,
//! through [`live`]'s proxy (a `static` app: its chat workspace's files as they are now);
//! the dev server is started on demand, in the chat's sandbox (provisioned from the draft
//! when none is warm), and `GET …/preview/live` says what it is doing.
//!
//! A token names the credential that minted it (`dsp_<secret>.<s|t><hash>`): it stops
//! working when that session signs out or that token is gone. Only what a page loads is
//! served ([`servable`]), with `Referrer-Policy: no-referrer`, and CORS only for the
//! sandboxed page's own opaque origin (`Origin: null`).

mod live;
mod status;

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use draftsmith_core::{AppId, DraftPath, ErrorBody, ErrorCode, Timestamp};
use draftsmith_sandbox::SandboxId;
use draftsmith_store::Principal;
use draftsmith_templates::Live;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, credential_ref, hash_secret, new_secret};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppIdPath, Query};
use crate::routes::apps::visible_app;
use crate::{AppState, Settings};
use status::{LIVE_TOKEN, dev_server, live_session};

/// How long a preview URL works.
const PREVIEW_SECONDS: i64 = 3600;
/// What the preview's pages may do: run scripts and forms, never share the builder's origin.
const SANDBOX_CSP: &str = "sandbox allow-scripts allow-forms allow-popups allow-modals";

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_preview))
        .routes(routes!(status::live_status))
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
    /// `live` (the app's dev server, or its chat workspace for a `static` app), `build`
    /// (the sandbox's `dist/`) or `draft` (the draft's files).
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
#[utoipa::path(post, path = "/admin/apps/{app_id}/preview", params(("app_id" = String, Path), PreviewQuery),
    responses((status = 200, body = PreviewSession), (status = 404, body = ErrorBody)))]
async fn create_preview(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
    Query(query): Query<PreviewQuery>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<PreviewSession>> {
    let app = visible_app(&state, &caller, app_id).await?;
    let minted_by = credential_ref(&headers).ok_or_else(|| {
        ApiError::internal("preview", &"an authenticated request without credentials")
    })?;
    let live = match query.live {
        Some(true) => live_session(&state, &app).await?,
        _ => None,
    };
    let kind = if live.is_some() { LIVE_TOKEN } else { "dsp_" };
    let token = format!("{}.{minted_by}", new_secret(kind)?);
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
    if let Some(session) = live {
        // Started now, so the page finds it warm; the page's requests wait for it anyway.
        let (runner, app) = (state.runner.clone(), app.clone());
        tokio::spawn(async move {
            if let Err(e) = runner.live_preview(&app, session).await {
                tracing::warn!(app = %app.id, error = %e, "the live preview did not start");
            }
        });
    }
    let build = build_dir(&state, app_id).await?;
    let source = match (live, &build) {
        (Some(_), _) => "live",
        (None, Some(_)) => "build",
        (None, None) => "draft",
    };
    Ok(axum::Json(PreviewSession {
        url: format!("/preview/{app_id}/{token}/"),
        source: source.into(),
        revision: state.store.draft(app_id).await?.revision,
        built_revision: build.map(|b| b.revision),
        expires_at,
    }))
}

/// `POST …/preview`'s options.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// Ask for the live preview (the app's dev server with hot reload) where the app's
    /// template has one and the app has a chat; otherwise the built output or the draft.
    pub live: Option<bool>,
}

/// Stored apart from cookies: a preview token never works as a session, nor the reverse.
fn preview_hash(token: &str) -> String {
    hash_secret(&format!("preview:{token}"))
}

/// One file of the preview.
#[utoipa::path(get, path = "/preview/{app_id}/{token}/{*path}", security(()),
    params(("app_id" = String, Path), ("token" = String, Path), ("path" = String, Path)),
    responses((status = 200, description = "a page asset, typed by its extension",
            content((Vec<u8> = "text/*"), (Vec<u8> = "application/*"), (Vec<u8> = "image/*"),
                (Vec<u8> = "font/*"), (Vec<u8> = "audio/*"), (Vec<u8> = "video/*"))),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn preview_file(
    State(state): State<AppState>,
    UrlPath((app_id, token, path)): UrlPath<(String, String, String)>,
    request: Request,
) -> ApiResult<Response> {
    serve(&state, &app_id, &token, &path, request).await
}

async fn preview_index(
    State(state): State<AppState>,
    UrlPath((app_id, token)): UrlPath<(String, String)>,
    request: Request,
) -> ApiResult<Response> {
    serve(&state, &app_id, &token, "", request).await
}

/// Who a preview token acts for, while it and the credential that minted it both live.
async fn preview_principal(state: &AppState, token: &str) -> ApiResult<Principal> {
    let expired = || {
        ApiError::new(
            ErrorCode::Unauthorized,
            "the preview link has expired or its sign-in ended; reload the preview",
        )
    };
    let now = Timestamp::now();
    let who = state
        .store
        .find_web_session(&preview_hash(token), now)
        .await?
        .ok_or_else(expired)?;
    let (_, minted_by) = token.split_once('.').ok_or_else(expired)?;
    let alive = match minted_by.split_at_checked(1) {
        Some(("s", hash)) => state.store.find_web_session(hash, now).await?.is_some(),
        Some(("t", hash)) => state.store.find_token(hash).await?.is_some(),
        _ => false,
    };
    if alive { Ok(who) } else { Err(expired()) }
}

/// What a page loads: no segment starting with `.` (`.opencode/`, `.env`, `.git`), nothing
/// under `node_modules/`, no project manifest, and only these asset extensions.
pub fn servable(path: &str) -> bool {
    const ASSETS: &[&str] = &[
        "html",
        "htm",
        "css",
        "js",
        "mjs",
        "map",
        "json",
        "webmanifest",
        "txt",
        "xml",
        "svg",
        "png",
        "jpg",
        "jpeg",
        "gif",
        "webp",
        "avif",
        "ico",
        "bmp",
        "woff",
        "woff2",
        "ttf",
        "otf",
        "wasm",
        "mp3",
        "mp4",
        "webm",
        "ogg",
        "wav",
    ];
    let segments: Vec<&str> = path.split('/').collect();
    let name = segments
        .last()
        .copied()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let manifest = name == "package.json"
        || name == "package-lock.json"
        || name == "jsconfig.json"
        || (name.starts_with("tsconfig") && name.ends_with(".json"));
    let hidden = segments
        .iter()
        .any(|s| s.starts_with('.') || s.eq_ignore_ascii_case("node_modules"));
    let asset = name
        .rsplit_once('.')
        .is_some_and(|(_, ext)| ASSETS.contains(&ext));
    asset && !hidden && !manifest
}

async fn serve(
    state: &AppState,
    app_id: &str,
    token: &str,
    path: &str,
    request: Request,
) -> ApiResult<Response> {
    let app_id: AppId = app_id.parse().map_err(|_| ApiError::not_found("app"))?;
    let who = preview_principal(state, token).await?;
    let app = visible_app(state, &Caller::from(who), app_id).await?;
    let live = match token.starts_with(LIVE_TOKEN) {
        true => live_session(state, &app).await?,
        false => None,
    };
    let template = draftsmith_templates::find(&app.template).map(|t| t.live);
    if let (Some(session), Some(Live::DevServer(_))) = (live, template) {
        let origin_null = request
            .headers()
            .get(header::ORIGIN)
            .is_some_and(|o| o == "null");
        let status = dev_server(state, &app, session).await?;
        let prefix = format!("/preview/{app_id}/{token}/");
        let mut response = live::forward(&status, &prefix, path, request).await?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            page_headers(response.headers_mut(), origin_null);
        }
        return Ok(response);
    }
    let request = request.headers();
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_owned()
    };
    let path = DraftPath::parse(&path)?;
    if !servable(path.as_str()) {
        return Err(ApiError::not_found("file"));
    }
    let workspace = live.and_then(|session| {
        let id = SandboxId::for_chat(session);
        state.runner.controller().workspace_dir(&id)
    });
    let build = match workspace {
        Some(workspace) if tokio::fs::try_exists(&workspace).await.unwrap_or(false) => {
            Some(Build {
                dir: workspace,
                revision: 0,
            })
        }
        _ => build_dir(state, app.id).await?,
    };
    let (bytes, revision) = match build {
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
    let origin_null = request.get(header::ORIGIN).is_some_and(|o| o == "null");
    page_headers(&mut headers, origin_null);
    if let Some(revision) = revision {
        headers.insert(
            super::drafts::REVISION_HEADER,
            value(&revision.to_string())?,
        );
    }
    Ok((StatusCode::OK, headers, bytes).into_response())
}

/// What every preview answer carries: the sandbox CSP, no caching, no sniffing, no
/// referrer, and CORS for the sandboxed page's own opaque origin only.
fn page_headers(headers: &mut HeaderMap, origin_null: bool) {
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
    // CORS fetches with `Origin: null`; only those are allowed to read the answer.
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if origin_null {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("null"),
        );
    }
    // The URL is the credential: never hand it to what the page links or loads.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
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
    let id = SandboxId::for_chat(run.chat_session_id);
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
