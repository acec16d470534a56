//! Operator routes: who am I, minting tokens, storage statistics.

use axum::extract::State;
use axum::http::StatusCode;
use draftsmith_core::api::{CreateToken, Me, StorageStats, TokenCreated};
use draftsmith_core::{ErrorBody, UserId};
use draftsmith_store::Principal;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, hash_secret, new_secret};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::{AppState, Settings};

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(create_token))
        .routes(routes!(storage))
}

/// The caller's identity.
#[utoipa::path(get, path = "/admin/me", responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(caller: Caller) -> axum::Json<Me> {
    axum::Json(Me {
        user_id: caller.user_id,
        role: caller.role,
    })
}

/// Mint a token for a user (admins only); the secret is shown once.
#[utoipa::path(post, path = "/admin/tokens", request_body = CreateToken,
    responses((status = 201, body = TokenCreated), (status = 403, body = ErrorBody)))]
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateToken>,
) -> ApiResult<(StatusCode, axum::Json<TokenCreated>)> {
    caller.require_admin()?;
    let user = validate_user_name(&body.user)?;
    let created = mint_token(state.store.as_ref(), &user, body.role, "api").await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Creates and stores a token; the CLI's `token create` uses the same function.
pub async fn mint_token(
    store: &dyn draftsmith_store::Store,
    user: &UserId,
    role: draftsmith_core::Role,
    label: &str,
) -> ApiResult<TokenCreated> {
    let token = new_secret("ds_")?;
    let who = Principal {
        user_id: user.clone(),
        role,
    };
    store
        .insert_token(&hash_secret(&token), &who, label)
        .await?;
    Ok(TokenCreated {
        token,
        user_id: who.user_id,
        role,
    })
}

/// A user name: 1–64 characters of letters, digits, `.`, `_`, `-` or `@`.
pub fn validate_user_name(raw: &str) -> ApiResult<UserId> {
    let ok = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(UserId(raw.to_owned()))
    } else {
        Err(ApiError::validation(
            "user",
            "a user name is 1-64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

/// Blob and app counts (admins only).
#[utoipa::path(get, path = "/admin/storage",
    responses((status = 200, body = StorageStats), (status = 403, body = ErrorBody)))]
async fn storage(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<StorageStats>> {
    caller.require_admin()?;
    Ok(axum::Json(state.store.stats().await?))
}
