//! The OpenAPI document: every route module contributes its annotated handlers, so the
//! document cannot drift from the router.

mod truth;

pub use truth::live;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::{AppState, Settings};

#[derive(OpenApi)]
#[openapi(
    info(title = "draftsmith", description = "A self-hostable coding-agent service for AI app builders."),
    modifiers(&BearerAuth),
    components(schemas(draftsmith_core::ErrorBody, draftsmith_core::ErrorCode)),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every route of the API with its documentation.
pub fn routes(settings: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::routes::health::router())
        .merge(crate::routes::session::router(settings))
        .merge(crate::routes::admin::router(settings))
        .merge(crate::routes::apps::router(settings))
        .merge(crate::routes::drafts::router(settings))
        .merge(crate::routes::runs::router(settings))
        .merge(crate::routes::queue::router(settings))
        .merge(crate::routes::steering::router(settings))
        .merge(crate::routes::app_events::router(settings))
        .merge(crate::routes::stream::router(settings))
        .merge(crate::routes::checkpoints::router(settings))
        .merge(crate::routes::chat::router(settings))
        .merge(crate::routes::agents::router(settings))
        .merge(crate::routes::templates::router(settings))
        .merge(crate::routes::preview::router(settings))
        .merge(crate::routes::releases::router(settings))
        .merge(crate::routes::usage::router(settings))
        .merge(crate::routes::uploads::router(settings))
}

/// The served document: axum's `{*path}` documented as `{path}` (OpenAPI has no
/// catch-all parameters), then completed by [`truth::complete`].
pub fn finish(mut api: utoipa::openapi::OpenApi) -> serde_json::Value {
    let paths = std::mem::take(&mut api.paths.paths);
    api.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    let mut doc = serde_json::to_value(&api).unwrap_or_default();
    truth::complete(&mut doc);
    doc
}
