//! Extractors that validate before a handler runs: strict JSON bodies, bounded raw bodies,
//! and typed path ids. Every rejection is an [`ApiError`] in the one envelope.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use draftsmith_core::{AppId, ErrorCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body deserialised strictly: unknown fields, wrong types and missing fields are
/// `VALIDATION_FAILED` naming the field.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        check_json_content_type(req.headers())?;
        let bytes = RawBody::from_request(req, state).await?.0;
        parse_object(&bytes).map(Json)
    }
}

/// A JSON body that may be left out: an empty body is `None`; one that is sent is held
/// to the rules of [`Json`].
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers().clone();
        let bytes = RawBody::from_request(req, state).await?.0;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        check_json_content_type(&headers)?;
        parse_object(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// Every JSON body of the API is an object; serde alone would also take a struct from an
/// array (`[]` for a struct whose fields are all optional).
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "the body must be a JSON object",
        ));
    }
    parse_json(bytes)
}

/// Exactly one `Content-Type` whose media type is `application/json`, compared without
/// case (RFC 9110 §8.3.1), parameters such as `charset` allowed; anything else is 415.
pub fn check_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let value = match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().unwrap_or_default(),
        (None, _) => "",
        (Some(_), Some(_)) => "(several)",
    };
    let media = value.split(';').next().unwrap_or_default().trim();
    if media.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    Err(ApiError::validation(
        "content-type",
        format!("expected Content-Type: application/json, got {value:?}"),
    )
    .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE))
}

/// Deserialises `bytes`, turning serde's complaint into a field-naming validation error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(
                ErrorCode::ValidationFailed,
                format!("malformed JSON: {inner}"),
            );
        }
        let message = inner.to_string();
        let field = field_of(&path, &message);
        ApiError::validation(field, message)
    })?;
    de.end()
        .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// serde names missing and unknown fields only in its message, in backticks.
fn field_of(path: &str, message: &str) -> String {
    let quoted = (message.starts_with("missing field") || message.starts_with("unknown field"))
        .then(|| message.split('`').nth(1))
        .flatten();
    match (path, quoted) {
        (".", Some(name)) => name.to_owned(),
        (p, Some(name)) if !p.ends_with(name) => format!("{p}.{name}"),
        (p, _) => p.to_owned(),
    }
}

/// A body read whole under the route's size limit; over it, `PAYLOAD_TOO_LARGE`.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(_)
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                {
                    ApiError::new(ErrorCode::PayloadTooLarge, "request body is too large")
                }
                other if crate::edge::body::is_body_timeout(&other) => ApiError::new(
                    ErrorCode::RequestTimeout,
                    "the request body did not arrive in time",
                ),
                other => ApiError::new(ErrorCode::ValidationFailed, other.body_text()),
            })
    }
}

/// The `{app_id}` of a route; a malformed id names no app, so it is a 404.
pub struct AppIdPath(pub AppId);

impl<S: Send + Sync> FromRequestParts<S> for AppIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let raw = path_param(parts, state, "app_id").await?;
        raw.parse()
            .map(AppIdPath)
            .map_err(|_| ApiError::not_found("app"))
    }
}

/// One percent-decoded path parameter of the matched route.
pub async fn path_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, e.body_text()))?;
    params
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .ok_or_else(|| ApiError::internal("path", &format!("route has no {{{name}}}")))
}

/// A query string deserialised strictly; a bad one is `VALIDATION_FAILED`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::validation("query", e.body_text()))
    }
}

/// A page size from `?limit=`, `max` when absent.
pub fn page_limit(limit: Option<i64>, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(max);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::validation(
            "limit",
            format!("limit must be 1-{max}"),
        ))
    }
}

/// A `next_before` cursor, `<created_at micros>_<id>`, back into its parts.
pub fn parse_cursor<T: std::str::FromStr>(cursor: &str) -> Result<(i64, T), ApiError> {
    cursor
        .split_once('_')
        .and_then(|(micros, id)| Some((micros.parse().ok()?, id.parse().ok()?)))
        .ok_or_else(|| ApiError::validation("before", "not a cursor from next_before"))
}
