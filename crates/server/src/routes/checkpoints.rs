//! Checkpoints: list (with what each changed since the previous one), take a manual one,
//! diff two of them or one against the draft, restore one, and revert a run. A restore is
//! itself undoable: it first checkpoints what it replaces.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use draftsmith_core::api::{
    App, Checkpoint, CheckpointDiff, CheckpointKind, CheckpointList, CreateCheckpoint, FileDiff,
    FilesChanged, Restored, RevertRun,
};
use draftsmith_core::{ErrorBody, ErrorCode};
use draftsmith_store::{Manifest, diff_manifests};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppIdPath, Json, OptionalJson, Query, page_limit, parse_cursor, path_param};
use crate::routes::apps::visible_app;
use crate::routes::runs::RunRoute;
use crate::{AppState, Settings};

/// Default and largest page.
const PAGE: i64 = 50;
/// Largest file shown as a text diff.
const MAX_DIFF_BYTES: usize = 512 * 1024;

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_checkpoints, create_checkpoint))
        .routes(routes!(diff_checkpoint))
        .routes(routes!(restore_checkpoint))
        .routes(routes!(revert_run))
}

/// `{app_id}` and `{checkpoint_id}`, checked against the caller and each other.
struct CheckpointRoute {
    app: App,
    checkpoint: Checkpoint,
    caller: Caller,
}

impl FromRequestParts<AppState> for CheckpointRoute {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let AppIdPath(app_id) = AppIdPath::from_request_parts(parts, state).await?;
        let app = visible_app(state, &caller, app_id).await?;
        let id = path_param(parts, state, "checkpoint_id").await?;
        let checkpoint = find(state, &app, &id).await?;
        Ok(Self {
            app,
            checkpoint,
            caller,
        })
    }
}

async fn find(state: &AppState, app: &App, id: &str) -> ApiResult<Checkpoint> {
    let checkpoint = state.store.checkpoint(id).await?;
    if checkpoint.app_id != app.id {
        return Err(ApiError::not_found("checkpoint"));
    }
    Ok(checkpoint)
}

/// Paging.
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

/// The app's checkpoints, newest first, each with the files it changed since the previous one.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/checkpoints", params(("app_id" = String, Path), ListQuery),
    responses((status = 200, body = CheckpointList)))]
async fn list_checkpoints(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
    Query(query): Query<ListQuery>,
) -> ApiResult<axum::Json<CheckpointList>> {
    visible_app(&state, &caller, app_id).await?;
    let limit = page_limit(query.limit, PAGE)?;
    let before = query
        .before
        .as_deref()
        .map(parse_cursor::<String>)
        .transpose()?;
    // One extra, older checkpoint gives the last of the page its predecessor.
    let mut page = state.store.checkpoints(app_id, limit + 2, before).await?;
    let more = page.len() as i64 > limit;
    for i in 0..page.len().min(limit as usize) {
        let changes = match page.get(i + 1) {
            Some(previous) => between(&state, previous, &page[i]).await?,
            None => {
                let manifest = state.store.checkpoint_manifest(&page[i]).await?;
                diff_manifests(
                    &Manifest {
                        revision: 0,
                        files: Vec::new(),
                    },
                    &manifest,
                )
            }
        };
        page[i].changes = Some(changes);
    }
    page.truncate(limit as usize);
    let next_before = more
        .then(|| {
            page.last()
                .map(|c| format!("{}_{}", c.created_at.as_micros(), c.id))
        })
        .flatten();
    Ok(axum::Json(CheckpointList {
        checkpoints: page,
        next_before,
    }))
}

/// What differs from `older` to `newer`: from the change log when both point at draft
/// revisions, otherwise by comparing manifests.
async fn between(
    state: &AppState,
    older: &Checkpoint,
    newer: &Checkpoint,
) -> ApiResult<FilesChanged> {
    let plain = |c: &Checkpoint| c.kind != CheckpointKind::Rejected;
    if plain(older) && plain(newer) && older.revision <= newer.revision {
        return Ok(state
            .store
            .changes_between(newer.app_id, older.revision, newer.revision)
            .await?);
    }
    let from = state.store.checkpoint_manifest(older).await?;
    let to = state.store.checkpoint_manifest(newer).await?;
    Ok(diff_manifests(&from, &to))
}

/// Take a manual checkpoint of the current draft.
#[utoipa::path(post, path = "/admin/apps/{app_id}/coding-agent/checkpoints", params(("app_id" = String, Path)),
    request_body = CreateCheckpoint, responses((status = 201, body = Checkpoint)))]
async fn create_checkpoint(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
    Json(body): Json<CreateCheckpoint>,
) -> ApiResult<(StatusCode, axum::Json<Checkpoint>)> {
    let app = visible_app(&state, &caller, app_id).await?;
    let label = body.label.unwrap_or_default();
    if label.chars().count() > 200 {
        return Err(ApiError::validation(
            "label",
            "a label is at most 200 characters",
        ));
    }
    let checkpoint = state
        .store
        .create_checkpoint(draftsmith_store::NewCheckpoint::manual(
            app.id,
            state.store.draft(app.id).await?.revision,
            label,
            caller.user_id,
        ))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(checkpoint)))
}

/// What to compare with.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    /// Another checkpoint's id, or `current` (the default) for the draft.
    against: Option<String>,
}

/// A unified diff from a checkpoint to another one or to the current draft.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/checkpoints/{checkpoint_id}/diff",
    params(("app_id" = String, Path), ("checkpoint_id" = String, Path), DiffQuery),
    responses((status = 200, body = CheckpointDiff), (status = 404, body = ErrorBody)))]
async fn diff_checkpoint(
    State(state): State<AppState>,
    route: CheckpointRoute,
    Query(query): Query<DiffQuery>,
) -> ApiResult<axum::Json<CheckpointDiff>> {
    let from = state.store.checkpoint_manifest(&route.checkpoint).await?;
    let against = query.against.unwrap_or_else(|| "current".into());
    let to = if against == "current" {
        state.store.draft(route.app.id).await?
    } else {
        let other = find(&state, &route.app, &against).await?;
        state.store.checkpoint_manifest(&other).await?
    };
    let changes = diff_manifests(&from, &to);
    let mut files = Vec::new();
    let kinds = [
        ("added", &changes.added),
        ("modified", &changes.modified),
        ("deleted", &changes.deleted),
    ];
    for (change, paths) in kinds {
        for path in paths {
            files.push(file_diff(&state, &from, &to, path, change).await?);
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(axum::Json(CheckpointDiff {
        from: route.checkpoint.id,
        against,
        files,
    }))
}

async fn content(state: &AppState, manifest: &Manifest, path: &str) -> ApiResult<Option<Vec<u8>>> {
    match manifest.files.iter().find(|f| f.path == path) {
        Some(file) => Ok(Some(state.store.blob(&file.sha256).await?)),
        None => Ok(None),
    }
}

async fn file_diff(
    state: &AppState,
    from: &Manifest,
    to: &Manifest,
    path: &str,
    change: &str,
) -> ApiResult<FileDiff> {
    let old = content(state, from, path).await?.unwrap_or_default();
    let new = content(state, to, path).await?.unwrap_or_default();
    let text = |b: &[u8]| {
        (b.len() <= MAX_DIFF_BYTES)
            .then(|| std::str::from_utf8(b).ok())
            .flatten()
            .map(str::to_owned)
    };
    let (diff, binary) = match (text(&old), text(&new)) {
        (Some(a), Some(b)) => {
            let diff = similar::TextDiff::from_lines(&a, &b)
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{path}"), &format!("b/{path}"))
                .to_string();
            (diff, false)
        }
        _ => (String::new(), true),
    };
    Ok(FileDiff {
        path: path.to_owned(),
        change: change.to_owned(),
        binary,
        diff,
    })
}

/// Make the draft that checkpoint's manifest again, as a new revision.
#[utoipa::path(post, path = "/admin/apps/{app_id}/coding-agent/checkpoints/{checkpoint_id}/restore",
    params(("app_id" = String, Path), ("checkpoint_id" = String, Path)),
    responses((status = 200, body = Restored), (status = 409, body = ErrorBody)))]
async fn restore_checkpoint(
    State(state): State<AppState>,
    route: CheckpointRoute,
) -> ApiResult<axum::Json<Restored>> {
    let label = format!("before restoring checkpoint {}", route.checkpoint.id);
    let (written, restore_checkpoint) = state
        .store
        .restore_to(&route.checkpoint, &route.caller.user_id, &label)
        .await?;
    state.runner.follow_draft(route.app.id).await;
    Ok(axum::Json(Restored {
        revision: written.revision,
        restore_checkpoint,
        changes: written.changes,
    }))
}

/// Undo a run: back to its `pre_run` checkpoint. Refused when the draft changed after the
/// run, listing what changed, unless `force`.
#[utoipa::path(post, path = "/admin/apps/{app_id}/coding-agent/runs/{run_id}/revert",
    params(("app_id" = String, Path), ("run_id" = String, Path)), request_body = RevertRun,
    responses((status = 200, body = Restored), (status = 409, body = ErrorBody)))]
async fn revert_run(
    State(state): State<AppState>,
    caller: Caller,
    route: RunRoute,
    OptionalJson(body): OptionalJson<RevertRun>,
) -> ApiResult<axum::Json<Restored>> {
    // The body is optional: an empty one means `{"force": false}`.
    let force = body.is_some_and(|b| b.force);
    let run = route.run;
    if !run.status.is_terminal() {
        return Err(ApiError::new(
            ErrorCode::CodingAgentRunActive,
            "the run is still active; cancel it first",
        )
        .detail("run_id", run.run_id.to_string()));
    }
    let pre_run = state
        .store
        .run_checkpoint(run.run_id, CheckpointKind::PreRun)
        .await?
        .ok_or_else(|| ApiError::not_found("pre_run checkpoint"))?;
    let after_run = run.result_revision.unwrap_or(run.base_revision);
    let current = state.store.draft(route.app.id).await?.revision;
    if current > after_run && !force {
        let changed = state
            .store
            .changes_between(route.app.id, after_run, current)
            .await?;
        let files: Vec<&String> = changed
            .added
            .iter()
            .chain(&changed.modified)
            .chain(&changed.deleted)
            .collect();
        return Err(ApiError::new(
            ErrorCode::CodingAgentRevisionConflict,
            "the draft changed after this run; send {\"force\": true} to revert anyway",
        )
        .detail("current_revision", current)
        .detail("files", serde_json::to_value(files).unwrap_or_default()));
    }
    let label = format!("before reverting run {}", run.run_id);
    let (written, restore_checkpoint) = state
        .store
        .restore_to(&pre_run, &caller.user_id, &label)
        .await?;
    state.runner.follow_draft(route.app.id).await;
    Ok(axum::Json(Restored {
        revision: written.revision,
        restore_checkpoint,
        changes: written.changes,
    }))
}
