//! Runtime agents and their tools as resources, an app's selected agent, and the builder's
//! view of its integration contract. JSON Schemas are checked against the meta-schema on
//! write; a broken one is a 400 naming where it breaks.

use axum::extract::State;
use axum::http::StatusCode;
use draftsmith_contract::{
    AgentContract, AgentDefinition, RuntimeAgent, RuntimeTool, ToolDefinition,
};
use draftsmith_core::ErrorBody;
use draftsmith_core::api::App;
use draftsmith_runner::contract::{as_agent, as_tool, load};
use draftsmith_store::StoredResource;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppIdPath, Json};
use crate::routes::apps::visible_app;
use crate::{AppState, Settings};

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tool, list_tools))
        .routes(routes!(get_tool, put_tool, delete_tool))
        .routes(routes!(create_agent, list_agents))
        .routes(routes!(get_agent, put_agent, delete_agent))
        .routes(routes!(select_agent))
        .routes(routes!(agent_contract))
}

/// `GET /admin/tools`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
struct ToolList {
    tools: Vec<RuntimeTool>,
}

/// `GET /admin/agents`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
struct AgentList {
    agents: Vec<RuntimeAgent>,
}

/// `PUT /admin/apps/{app_id}/selected-agent`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SelectAgent {
    /// The agent to embed, or `null` to clear.
    agent_id: Option<String>,
}

fn check_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(ApiError::validation(
            "name",
            "name must be 1-100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "name",
            "name must not contain control characters",
        ));
    }
    Ok(())
}

/// A JSON Schema that the meta-schema accepts, or a 400 naming the field and where.
fn check_schema(field: &str, schema: &Value) -> ApiResult<()> {
    // A boolean schema is valid JSON Schema, but a tool's contract must describe a value.
    if !schema.is_object() {
        return Err(ApiError::validation(
            field,
            format!("{field} must be a JSON Schema object"),
        ));
    }
    jsonschema::meta::validate(schema).map_err(|err| {
        let at = err.instance_path().to_string();
        let at = if at.is_empty() { "/".to_owned() } else { at };
        ApiError::validation(
            field,
            format!("{field} is not a valid JSON Schema at {at}: {err}"),
        )
        .detail("schema_path", at)
    })
}

fn check_tool(definition: &ToolDefinition) -> ApiResult<()> {
    check_name(&definition.name)?;
    if definition
        .x_ui
        .as_ref()
        .is_some_and(|hint| !hint.is_object() && !hint.is_null())
    {
        return Err(ApiError::validation("x-ui", "x-ui must be an object"));
    }
    check_schema("input_schema", &definition.input_schema)?;
    check_schema("output_schema", &definition.output_schema)
}

fn owned<T>(caller: &Caller, stored: &StoredResource, value: T, what: &str) -> ApiResult<T> {
    if caller.can_see(&stored.owner) {
        Ok(value)
    } else {
        Err(ApiError::not_found(what))
    }
}

fn document<T: Serialize>(definition: &T) -> ApiResult<Value> {
    serde_json::to_value(definition).map_err(|e| ApiError::internal("resource", &e))
}

/// Create a tool.
#[utoipa::path(post, path = "/admin/tools", request_body = ToolDefinition,
    responses((status = 201, body = RuntimeTool), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_tool(
    State(state): State<AppState>,
    caller: Caller,
    Json(definition): Json<ToolDefinition>,
) -> ApiResult<(StatusCode, axum::Json<RuntimeTool>)> {
    check_tool(&definition)?;
    let stored = StoredResource {
        id: uuid::Uuid::new_v4().to_string(),
        kind: "tool".into(),
        owner: caller.user_id,
        name: definition.name.clone(),
        body: document(&definition)?,
    };
    state.store.put_resource(&stored, true).await?;
    Ok((StatusCode::CREATED, axum::Json(as_tool(stored)?)))
}

/// The caller's tools (every tool for admins).
#[utoipa::path(get, path = "/admin/tools", responses((status = 200, body = ToolList)))]
async fn list_tools(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<ToolList>> {
    let owner = (caller.role != draftsmith_core::Role::Admin).then_some(&caller.user_id);
    let tools = state
        .store
        .resources("tool", owner)
        .await?
        .into_iter()
        .map(as_tool)
        .collect::<Result<_, _>>()?;
    Ok(axum::Json(ToolList { tools }))
}

/// One tool.
#[utoipa::path(get, path = "/admin/tools/{tool_id}", params(("tool_id" = String, Path)),
    responses((status = 200, body = RuntimeTool), (status = 404, body = ErrorBody)))]
async fn get_tool(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<axum::Json<RuntimeTool>> {
    let stored = state.store.resource("tool", &id).await?;
    let tool = owned(&caller, &stored, as_tool(stored.clone())?, "tool")?;
    Ok(axum::Json(tool))
}

/// Replace a tool.
#[utoipa::path(put, path = "/admin/tools/{tool_id}", params(("tool_id" = String, Path)), request_body = ToolDefinition,
    responses((status = 200, body = RuntimeTool), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn put_tool(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
    Json(definition): Json<ToolDefinition>,
) -> ApiResult<axum::Json<RuntimeTool>> {
    let existing = state.store.resource("tool", &id).await?;
    owned(&caller, &existing, (), "tool")?;
    check_tool(&definition)?;
    let stored = StoredResource {
        name: definition.name.clone(),
        body: document(&definition)?,
        ..existing
    };
    state.store.put_resource(&stored, false).await?;
    Ok(axum::Json(as_tool(stored)?))
}

/// Delete a tool; agents that name it report it as unresolved.
#[utoipa::path(delete, path = "/admin/tools/{tool_id}", params(("tool_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_tool(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<StatusCode> {
    let existing = state.store.resource("tool", &id).await?;
    owned(&caller, &existing, (), "tool")?;
    state.store.delete_resource("tool", &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create an agent.
#[utoipa::path(post, path = "/admin/agents", request_body = AgentDefinition,
    responses((status = 201, body = RuntimeAgent), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_agent(
    State(state): State<AppState>,
    caller: Caller,
    Json(definition): Json<AgentDefinition>,
) -> ApiResult<(StatusCode, axum::Json<RuntimeAgent>)> {
    check_name(&definition.name)?;
    let stored = StoredResource {
        id: uuid::Uuid::new_v4().to_string(),
        kind: "agent".into(),
        owner: caller.user_id,
        name: definition.name.clone(),
        body: document(&definition)?,
    };
    state.store.put_resource(&stored, true).await?;
    Ok((StatusCode::CREATED, axum::Json(as_agent(stored)?)))
}

/// The caller's agents (every agent for admins).
#[utoipa::path(get, path = "/admin/agents", responses((status = 200, body = AgentList)))]
async fn list_agents(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<AgentList>> {
    let owner = (caller.role != draftsmith_core::Role::Admin).then_some(&caller.user_id);
    let agents = state
        .store
        .resources("agent", owner)
        .await?
        .into_iter()
        .map(as_agent)
        .collect::<Result<_, _>>()?;
    Ok(axum::Json(AgentList { agents }))
}

/// One agent.
#[utoipa::path(get, path = "/admin/agents/{agent_id}", params(("agent_id" = String, Path)),
    responses((status = 200, body = RuntimeAgent), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn get_agent(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<axum::Json<RuntimeAgent>> {
    let stored = state.store.resource("agent", &id).await?;
    let agent = owned(&caller, &stored, as_agent(stored.clone())?, "agent")?;
    Ok(axum::Json(agent))
}

/// Replace an agent.
#[utoipa::path(put, path = "/admin/agents/{agent_id}", params(("agent_id" = String, Path)), request_body = AgentDefinition,
    responses((status = 200, body = RuntimeAgent), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn put_agent(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
    Json(definition): Json<AgentDefinition>,
) -> ApiResult<axum::Json<RuntimeAgent>> {
    let existing = state.store.resource("agent", &id).await?;
    owned(&caller, &existing, (), "agent")?;
    check_name(&definition.name)?;
    let stored = StoredResource {
        name: definition.name.clone(),
        body: document(&definition)?,
        ..existing
    };
    state.store.put_resource(&stored, false).await?;
    Ok(axum::Json(as_agent(stored)?))
}

/// Delete an agent; apps that selected it report it as unresolved.
#[utoipa::path(delete, path = "/admin/agents/{agent_id}", params(("agent_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_agent(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<StatusCode> {
    let existing = state.store.resource("agent", &id).await?;
    owned(&caller, &existing, (), "agent")?;
    state.store.delete_resource("agent", &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Choose the runtime agent an app embeds (`null` clears it).
#[utoipa::path(put, path = "/admin/apps/{app_id}/selected-agent", params(("app_id" = String, Path)),
    request_body = SelectAgent, responses((status = 200, body = App), (status = 404, body = ErrorBody)))]
async fn select_agent(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
    Json(body): Json<SelectAgent>,
) -> ApiResult<axum::Json<App>> {
    visible_app(&state, &caller, app_id).await?;
    if let Some(agent) = &body.agent_id {
        let stored = state.store.resource("agent", agent).await?;
        owned(&caller, &stored, (), "agent")?;
    }
    state
        .store
        .select_agent(app_id, body.agent_id.as_deref())
        .await?;
    Ok(axum::Json(state.store.app(app_id).await?))
}

/// The selected agent's integration contract: summary, resolved tool contracts, UI hints,
/// and diagnostics for whatever could not be resolved.
#[utoipa::path(get, path = "/admin/apps/{app_id}/builder/agent-contract", params(("app_id" = String, Path)),
    responses((status = 200, body = AgentContract), (status = 404, body = ErrorBody)))]
async fn agent_contract(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
) -> ApiResult<axum::Json<AgentContract>> {
    let app = visible_app(&state, &caller, app_id).await?;
    Ok(axum::Json(load(state.store.as_ref(), &app).await?))
}
