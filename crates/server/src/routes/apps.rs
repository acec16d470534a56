//! Apps: create from a built-in template (its files become draft revision 1), list, get.

use axum::extract::State;
use axum::http::StatusCode;
use draftsmith_core::api::{App, AppList, CreateApp};
use draftsmith_core::{AppId, DraftPath, ErrorBody};
use draftsmith_store::NewApp;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppIdPath, Json};
use crate::{AppState, Settings};

/// Longest app name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Longest slug, in bytes.
const MAX_SLUG_BYTES: usize = 48;

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_app, list_apps))
        .routes(routes!(get_app))
}

/// The files a new app of `template` starts with, `(relative path, content)`: the
/// template's own, and OpenCode's project-local tools (SPEC §5), which every template
/// carries so the seeding before a run never shows up as a change of the agent's.
pub fn new_app_files(template: &draftsmith_templates::Template) -> Vec<(String, Vec<u8>)> {
    let opencode_files = draftsmith_opencode::project_files()
        .into_iter()
        .map(|(path, text)| (path, text.into_bytes()));
    template
        .files()
        .into_iter()
        .map(|(path, content)| (path, content.to_vec()))
        .chain(opencode_files)
        .collect()
}

/// Create an app from a template.
#[utoipa::path(post, path = "/admin/apps", request_body = CreateApp,
    responses((status = 201, body = App), (status = 400, body = ErrorBody)))]
async fn create_app(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateApp>,
) -> ApiResult<(StatusCode, axum::Json<App>)> {
    let name = body.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::validation(
            "name",
            format!("name must be 1-{MAX_NAME_CHARS} printable characters"),
        ));
    }
    let template = draftsmith_templates::find(&body.template).ok_or_else(|| {
        let known: Vec<&str> = draftsmith_templates::all().iter().map(|t| t.id).collect();
        ApiError::validation(
            "template",
            format!(
                "unknown template {:?}; known: {}",
                body.template,
                known.join(", ")
            ),
        )
    })?;
    let files = new_app_files(template)
        .into_iter()
        .map(|(path, content)| Ok((DraftPath::parse(&path)?, content)))
        .collect::<Result<Vec<_>, draftsmith_core::PathError>>()
        .map_err(|e| ApiError::internal("template path", &e))?;
    let app = state
        .store
        .create_app(NewApp {
            name: name.to_owned(),
            slug: slugify(name),
            template: template.id.to_owned(),
            owner: caller.user_id,
            files,
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(app)))
}

/// List the apps the caller can see, newest first.
#[utoipa::path(get, path = "/admin/apps", responses((status = 200, body = AppList)))]
async fn list_apps(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<AppList>> {
    let owner = match caller.role {
        draftsmith_core::Role::Admin => None,
        draftsmith_core::Role::Builder => Some(&caller.user_id),
    };
    let apps = state.store.apps(owner).await?;
    Ok(axum::Json(AppList { apps }))
}

/// One app.
#[utoipa::path(get, path = "/admin/apps/{app_id}", params(("app_id" = String, Path)),
    responses((status = 200, body = App), (status = 404, body = ErrorBody)))]
async fn get_app(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(id): AppIdPath,
) -> ApiResult<axum::Json<App>> {
    Ok(axum::Json(visible_app(&state, &caller, id).await?))
}

/// The app when the caller may see it; another user's app is a 404, not a 403, so ids
/// reveal nothing.
pub async fn visible_app(state: &AppState, caller: &Caller, id: AppId) -> ApiResult<App> {
    let app = state.store.app(id).await?;
    if caller.can_see(&app.owner_user_id) {
        Ok(app)
    } else {
        Err(ApiError::not_found("app"))
    }
}

/// Lower-case ASCII letters and digits joined by single dashes; `app` when nothing is left.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.truncate(MAX_SLUG_BYTES);
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "app".into()
    } else {
        slug.into()
    }
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slugify("My Todo App!"), "my-todo-app");
        assert_eq!(slugify("  --Ünïcode  café "), "n-code-caf");
        assert_eq!(slugify("日本"), "app");
        assert_eq!(slugify(&"x".repeat(100)).len(), 48);
    }
}
