//! Usage and cost: `GET /admin/usage` (sums by user, app, model or day; admins see
//! everyone's, builders their own) and a run's model calls one by one.

use axum::extract::State;
use draftsmith_core::api::{ModelCallRecord, UsageGroup, UsageReport};
use draftsmith_core::{ErrorBody, Role, Timestamp};
use draftsmith_store::UsageFilter;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::Query;
use crate::routes::runs::RunRoute;
use crate::{AppState, Settings};

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(usage))
        .routes(routes!(model_calls))
}

/// `GET /admin/usage`'s parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    /// `user`, `app`, `model` or `day`; `user` when omitted.
    group_by: Option<UsageGroup>,
    /// RFC 3339: calls finished at or after this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// RFC 3339: calls finished before this instant.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
}

/// Token usage and cost summed by user, app, model or day.
#[utoipa::path(get, path = "/admin/usage", params(UsageQuery),
    responses((status = 200, body = UsageReport), (status = 400, body = ErrorBody)))]
async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<UsageQuery>,
) -> ApiResult<axum::Json<UsageReport>> {
    let group_by = query.group_by.unwrap_or(UsageGroup::User);
    // A builder sees their own usage only, whatever they ask.
    let user = (caller.role != Role::Admin).then(|| caller.user_id.clone());
    let filter = UsageFilter {
        user: user.clone(),
        from: query.from,
        to: query.to,
    };
    // A period that ends before it starts is empty.
    let backwards = matches!((query.from, query.to), (Some(from), Some(to)) if from > to);
    let rows = if backwards {
        Vec::new()
    } else {
        state.store.usage_by(group_by, &filter).await?
    };
    let mut total = draftsmith_core::UsageTotals::default();
    for row in &rows {
        total.add_totals(&row.totals);
    }
    Ok(axum::Json(UsageReport {
        group_by,
        from: query.from,
        to: query.to,
        user_id: user.map(|u| u.0),
        rows,
        total,
    }))
}

/// A run's model calls in order: each call's tokens, cost and whether it was estimated.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/runs/{run_id}/model-calls",
    params(("app_id" = String, Path), ("run_id" = String, Path)),
    responses((status = 200, body = Vec<ModelCallRecord>), (status = 404, body = ErrorBody)))]
async fn model_calls(
    State(state): State<AppState>,
    route: RunRoute,
) -> ApiResult<axum::Json<Vec<ModelCallRecord>>> {
    Ok(axum::Json(state.store.model_calls(route.run.run_id).await?))
}
