//! Browser sign-in: a token is exchanged for an `HttpOnly`, `SameSite=Strict` cookie, since
//! `EventSource` cannot send an `Authorization` header.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use draftsmith_core::api::{CreateWebSession, Me};
use draftsmith_core::{ErrorCode, Timestamp};
use draftsmith_store::Principal;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{SESSION_COOKIE, hash_secret, new_secret, session_cookie};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::{AppState, Settings};

/// How long a browser session lasts.
const SESSION_SECONDS: i64 = 7 * 24 * 3600;

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sign_in, sign_out))
}

/// Exchange a token for a session cookie.
#[utoipa::path(post, path = "/auth/session", security(()), request_body = CreateWebSession,
    responses((status = 200, body = Me), (status = 401, body = draftsmith_core::ErrorBody)))]
async fn sign_in(
    State(state): State<AppState>,
    request: HeaderMap,
    Json(body): Json<CreateWebSession>,
) -> ApiResult<impl IntoResponse> {
    let principal: Principal = state
        .store
        .find_token(&hash_secret(body.token.trim()))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "unknown token"))?;
    let session = new_secret("dss_")?;
    let expires =
        Timestamp::from_micros(Timestamp::now().as_micros() + SESSION_SECONDS * 1_000_000);
    state
        .store
        .insert_web_session(&hash_secret(&session), &principal, expires)
        .await?;
    let secure = secure_attribute(&state, &request);
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}"
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal("cookie", &e))?,
    );
    let me = Me {
        user_id: principal.user_id,
        role: principal.role,
    };
    Ok((headers, axum::Json(me)))
}

/// End the browser session.
#[utoipa::path(delete, path = "/auth/session", security(()), responses((status = 204)))]
async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    if let Some(session) = session_cookie(&headers) {
        state
            .store
            .delete_web_session(&hash_secret(&session))
            .await?;
    }
    let secure = secure_attribute(&state, &headers);
    let clear = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}");
    let mut out = HeaderMap::new();
    out.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(|e| ApiError::internal("cookie", &e))?,
    );
    Ok((StatusCode::NO_CONTENT, out))
}

/// `; Secure` when the browser reached us over HTTPS: always with `secure_cookies`, or
/// when a trusted reverse proxy says so (`X-Forwarded-Proto: https` or
/// `Forwarded: proto=https`). The server itself speaks plain HTTP.
fn secure_attribute(state: &AppState, headers: &HeaderMap) -> &'static str {
    let http = &state.settings.http;
    let forwarded_https = || {
        let xfp = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        let forwarded = headers
            .get(header::FORWARDED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|first| {
                first.split(';').any(|pair| {
                    pair.split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("proto")
                            && v.trim().trim_matches('"').eq_ignore_ascii_case("https")
                    })
                })
            });
        xfp || forwarded
    };
    if http.secure_cookies || (http.trust_proxy_headers && forwarded_https()) {
        "; Secure"
    } else {
        ""
    }
}
