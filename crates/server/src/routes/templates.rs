//! The built-in app templates, so a client can offer the choice when creating an app.

use draftsmith_core::ErrorBody;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::{AppState, Settings};

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_templates))
}

/// One template.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateInfo {
    /// The id to pass as `template` to `POST /admin/apps`.
    pub id: String,
    /// One line for people choosing.
    pub description: String,
    /// What verification runs after the agent's edits.
    pub verify: Vec<String>,
}

/// `GET /admin/templates`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    /// Every built-in template.
    pub templates: Vec<TemplateInfo>,
}

/// The templates an app can be created from.
#[utoipa::path(get, path = "/admin/templates",
    responses((status = 200, body = TemplateList), (status = 401, body = ErrorBody)))]
async fn list_templates(_caller: Caller) -> axum::Json<TemplateList> {
    let templates = draftsmith_templates::all()
        .iter()
        .map(|t| TemplateInfo {
            id: t.id.into(),
            description: t.description.into(),
            verify: t.verify.iter().map(|c| (*c).to_owned()).collect(),
        })
        .collect();
    axum::Json(TemplateList { templates })
}
