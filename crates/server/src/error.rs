//! One error type for every route. Client errors answer the SPEC §2 envelope with their
//! code; anything unexpected is logged where it happened and answered as an opaque 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use draftsmith_core::{ErrorBody, ErrorCode, PathError};
use draftsmith_store::StoreError;
use serde_json::{Map, Value};

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error on its way to becoming an HTTP response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    /// Seconds for a `Retry-After` header (429, 503).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with the code's usual status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(code.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body: ErrorBody::new(code, message),
            retry_after: None,
        }
    }

    /// Answers with `Retry-After: secs` (at least one second).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// Overrides the status, e.g. 428 for a missing `If-Match`.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds one entry to `details`.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.body.error.details.insert(key.to_owned(), value.into());
        self
    }

    /// `VALIDATION_FAILED` naming `field`.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self::new(ErrorCode::ValidationFailed, message).detail("field", field)
    }

    /// `NOT_FOUND` for a kind of thing.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// An unexpected failure: logged in full here, opaque on the wire.
    pub fn internal(context: &str, err: &dyn std::fmt::Display) -> Self {
        tracing::error!(context, error = %err, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.body.error.code
    }

    /// The error's details.
    pub fn details(&self) -> &Map<String, Value> {
        &self.body.error.details
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => Self::not_found(what),
            StoreError::RevisionConflict { current } => Self::new(
                ErrorCode::CodingAgentRevisionConflict,
                format!("the draft moved on: it is at revision {current}"),
            )
            .detail("current_revision", current),
            StoreError::RunActive { run_id } => {
                let err = Self::new(
                    ErrorCode::CodingAgentRunActive,
                    "the app already has an active run; wait for it to end or cancel it",
                );
                match run_id {
                    Some(id) => err.detail("run_id", id.to_string()),
                    None => err,
                }
            }
            StoreError::NameTaken(name) => Self::new(
                ErrorCode::ValidationFailed,
                format!("the name {name:?} is already used"),
            )
            .with_status(StatusCode::CONFLICT)
            .detail("field", "name"),
            other => Self::internal("store", &other),
        }
    }
}

impl From<PathError> for ApiError {
    fn from(err: PathError) -> Self {
        Self::new(ErrorCode::CodingAgentPathBlocked, err.to_string())
            .detail("reason", err.reason())
            .detail("field", "path")
    }
}
