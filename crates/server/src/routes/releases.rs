//! Releases and the publication: build a release from the draft or a checkpoint (live at
//! once unless asked otherwise), list and read them, promote any of them (a pointer swap,
//! no rebuild), take the app offline, and set who may open it.

use axum::extract::State;
use axum::http::StatusCode;
use draftsmith_core::api::App;
use draftsmith_core::publish::{
    CreateRelease, Publication, Release, ReleaseList, SetPublication, Visibility,
};
use draftsmith_core::{ErrorBody, ErrorCode};
use draftsmith_runner::publish::{PublishError, PublishRequest, publish};
use draftsmith_store::PublicationRecord;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppIdPath, Json, path_param};
use crate::routes::apps::visible_app;
use crate::{AppState, Settings};

/// Access keys: long enough to resist guessing, and safe in a URL path.
const KEY_CHARS: std::ops::RangeInclusive<usize> = 16..=128;

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_release, list_releases))
        .routes(routes!(get_release))
        .routes(routes!(promote_release))
        .routes(routes!(get_publication, set_publication, unpublish))
}

/// Build and publish a release.
#[utoipa::path(post, path = "/admin/apps/{app_id}/releases", params(("app_id" = String, Path)),
    request_body = CreateRelease,
    responses((status = 201, body = Release), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the build failed; nothing was published")))]
async fn create_release(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
    Json(body): Json<CreateRelease>,
) -> ApiResult<(StatusCode, axum::Json<Release>)> {
    let app = visible_app(&state, &caller, app_id).await?;
    let (manifest, checkpoint_id) = match body.checkpoint_id {
        Some(id) => {
            // A malformed id is a bad request; a well-formed one that names no checkpoint
            // of this app is a missing resource.
            let missing = || match id.parse::<uuid::Uuid>() {
                Ok(_) => ApiError::not_found("checkpoint"),
                Err(_) => ApiError::validation(
                    "checkpoint_id",
                    format!("no checkpoint {id:?} in this app"),
                ),
            };
            let checkpoint = state.store.checkpoint(&id).await.map_err(|_| missing())?;
            if checkpoint.app_id != app.id {
                return Err(missing());
            }
            (
                state.store.checkpoint_manifest(&checkpoint).await?,
                Some(id),
            )
        }
        None => (state.store.draft(app.id).await?, None),
    };
    let request = PublishRequest {
        app: &app,
        manifest,
        checkpoint_id,
        by: caller.user_id.clone(),
        promote: body.promote.unwrap_or(true),
    };
    let release = publish(&state.store, &state.runner.controller(), request)
        .await
        .map_err(publish_error)?;
    state.sites.invalidate(&app.slug);
    Ok((StatusCode::CREATED, axum::Json(release)))
}

fn publish_error(err: PublishError) -> ApiError {
    match err {
        PublishError::BuildFailed {
            command,
            exit,
            output,
        } => ApiError::new(
            ErrorCode::CodingAgentVerificationFailed,
            format!("the build failed: `{command}` exited with {exit}; nothing was published"),
        )
        .detail("command", command)
        .detail("output", output),
        PublishError::Store(e) => e.into(),
        other => ApiError::new(ErrorCode::CodingAgentSandboxFailed, other.to_string()),
    }
}

/// The app's releases, newest first.
#[utoipa::path(get, path = "/admin/apps/{app_id}/releases", params(("app_id" = String, Path)),
    responses((status = 200, body = ReleaseList), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn list_releases(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
) -> ApiResult<axum::Json<ReleaseList>> {
    visible_app(&state, &caller, app_id).await?;
    let releases = state.store.releases(app_id).await?;
    Ok(axum::Json(ReleaseList { releases }))
}

/// One release with its files.
#[utoipa::path(get, path = "/admin/apps/{app_id}/releases/{release_id}",
    params(("app_id" = String, Path), ("release_id" = String, Path)),
    responses((status = 200, body = Release), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_release(
    State(state): State<AppState>,
    route: ReleaseRoute,
) -> ApiResult<axum::Json<Release>> {
    let mut release = route.release;
    let files = state.store.release_files(&release.id).await?;
    release.files = Some(files.into_iter().map(|f| f.file).collect());
    Ok(axum::Json(release))
}

/// Make a release the live one at once (also a rollback).
#[utoipa::path(post, path = "/admin/apps/{app_id}/releases/{release_id}/promote",
    params(("app_id" = String, Path), ("release_id" = String, Path)),
    responses((status = 200, body = Publication), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn promote_release(
    State(state): State<AppState>,
    route: ReleaseRoute,
) -> ApiResult<axum::Json<Publication>> {
    let record = state
        .store
        .promote_release(route.app.id, &route.release.id)
        .await?;
    state.sites.invalidate(&record.slug);
    Ok(axum::Json(publication(&state, record)))
}

/// Where and for whom the app is published.
#[utoipa::path(get, path = "/admin/apps/{app_id}/publication", params(("app_id" = String, Path)),
    responses((status = 200, body = Publication), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn get_publication(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
) -> ApiResult<axum::Json<Publication>> {
    visible_app(&state, &caller, app_id).await?;
    let record = state.store.publication(app_id).await?;
    Ok(axum::Json(publication(&state, record)))
}

/// Set who may open the published app.
#[utoipa::path(put, path = "/admin/apps/{app_id}/publication", params(("app_id" = String, Path)),
    request_body = SetPublication,
    responses((status = 200, body = Publication), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_publication(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
    Json(body): Json<SetPublication>,
) -> ApiResult<axum::Json<Publication>> {
    visible_app(&state, &caller, app_id).await?;
    let key_hash = match (body.visibility, body.access_key.as_deref()) {
        (Visibility::Public, None) => None,
        (Visibility::Public, Some(_)) => {
            return Err(ApiError::validation(
                "access_key",
                "a public app takes no access key",
            ));
        }
        (Visibility::Private, Some(key)) if valid_key(key) => Some(crate::auth::hash_secret(key)),
        (Visibility::Private, _) => {
            return Err(ApiError::validation(
                "access_key",
                format!(
                    "a private app needs an access key of {}-{} characters from [A-Za-z0-9_-]",
                    KEY_CHARS.start(),
                    KEY_CHARS.end()
                ),
            ));
        }
    };
    let record = state
        .store
        .set_visibility(app_id, body.visibility, key_hash)
        .await?;
    state.sites.invalidate(&record.slug);
    Ok(axum::Json(publication(&state, record)))
}

fn valid_key(key: &str) -> bool {
    KEY_CHARS.contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Take the app offline; its releases stay and any can be promoted again.
#[utoipa::path(delete, path = "/admin/apps/{app_id}/publication", params(("app_id" = String, Path)),
    responses((status = 200, body = Publication), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn unpublish(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
) -> ApiResult<axum::Json<Publication>> {
    visible_app(&state, &caller, app_id).await?;
    let record = state.store.unpublish(app_id).await?;
    state.sites.invalidate(&record.slug);
    Ok(axum::Json(publication(&state, record)))
}

fn publication(state: &AppState, record: PublicationRecord) -> Publication {
    Publication {
        app_id: record.app,
        release_id: record.release_id,
        visibility: record.visibility,
        path: format!("/p/{}/", record.slug),
        domain_url: state
            .settings
            .apps_domain
            .as_ref()
            .map(|domain| format!("https://{}.{domain}/", record.slug)),
    }
}

/// `{app_id}` and `{release_id}`, checked against the caller and each other.
struct ReleaseRoute {
    app: App,
    release: Release,
}

impl axum::extract::FromRequestParts<AppState> for ReleaseRoute {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let AppIdPath(app_id) = AppIdPath::from_request_parts(parts, state).await?;
        let app = visible_app(state, &caller, app_id).await?;
        let id = path_param(parts, state, "release_id").await?;
        let release = state.store.release(&id).await?;
        if release.app_id != app.id {
            return Err(ApiError::not_found("release"));
        }
        Ok(Self { app, release })
    }
}
