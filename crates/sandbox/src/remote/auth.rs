//! Shared-secret bearer authentication, compared in constant time (both sides hashed, so
//! neither content nor length leaks through timing).

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::failure::Failure;
use crate::error::SandboxError;

/// The digest a presented secret is compared with.
pub(crate) fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Equal digests, without an early exit.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Rejects any request without `Authorization: Bearer <secret>` with a 401 envelope.
pub(crate) async fn require_secret(
    State(expected): State<[u8; 32]>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(secret) if same(&digest(secret), &expected) => next.run(request).await,
        Some(_) => {
            Failure(SandboxError::Unauthorized("wrong shared secret".into())).into_response()
        }
        None => Failure(SandboxError::Unauthorized(
            "missing `Authorization: Bearer <shared secret>`".into(),
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_digests() {
        assert!(same(&digest("s3cret"), &digest("s3cret")));
        assert!(!same(&digest("s3cret"), &digest("s3cret ")));
        assert!(!same(&digest(""), &digest("x")));
    }
}
