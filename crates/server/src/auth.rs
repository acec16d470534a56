//! Who is calling: a bearer token or the web UI's session cookie, both stored only as
//! SHA-256 hashes. Tokens are long random secrets, so a fast hash is enough.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use draftsmith_core::{ErrorCode, Role, Timestamp, UserId};
use draftsmith_store::Principal;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Name of the browser session cookie.
pub const SESSION_COOKIE: &str = "draftsmith_session";

/// The authenticated caller of an `/admin` route.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
}

impl Caller {
    /// Refuses callers that are not admins.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Builder => Err(ApiError::new(
                ErrorCode::Forbidden,
                "this route needs an admin token",
            )),
        }
    }

    /// Whether the caller may see a resource owned by `owner`.
    pub fn can_see(&self, owner: &UserId) -> bool {
        self.role == Role::Admin || &self.user_id == owner
    }
}

impl From<Principal> for Caller {
    fn from(p: Principal) -> Self {
        Self {
            user_id: p.user_id,
            role: p.role,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <token>'"))?;
            let found = state.store.find_token(&hash_secret(token)).await?;
            return found
                .map(Caller::from)
                .ok_or_else(|| unauthorized("unknown token"));
        }
        if let Some(session) = session_cookie(&parts.headers) {
            let found = state
                .store
                .find_web_session(&hash_secret(&session), Timestamp::now())
                .await?;
            return found
                .map(Caller::from)
                .ok_or_else(|| unauthorized("the session has expired; sign in again"));
        }
        Err(unauthorized(
            "missing credentials: send 'Authorization: Bearer <token>'",
        ))
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// The session cookie's value, when the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Which stored credential a request presents, as `t<hash>` (a bearer token) or
/// `s<hash>` (a session cookie), in the order [`Caller`] reads them. Previews minted with
/// it live only as long as it does.
pub fn credential_ref(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value.to_str().ok()?.strip_prefix("Bearer ")?.trim();
        return Some(format!("t{}", hash_secret(token)));
    }
    session_cookie(headers).map(|session| format!("s{}", hash_secret(&session)))
}

/// The stored form of a token or session id.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret with a recognisable prefix (`ds_` for tokens).
pub fn new_secret(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("getrandom", &e))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}
