//! An error on its way to the controller's wire envelope.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::error::SandboxError;

/// An error on its way to the wire envelope.
pub(crate) struct Failure(pub(crate) SandboxError);

impl From<SandboxError> for Failure {
    fn from(e: SandboxError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = self.0.code();
        if code.http_status() >= 422 {
            tracing::warn!(error = %self.0, "sandbox controller request failed");
        }
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0.to_body())).into_response()
    }
}
