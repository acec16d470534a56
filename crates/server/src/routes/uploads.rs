//! Uploads: files a person attaches to prompts. `POST` takes the file as the raw body (its
//! `Content-Type` declares the type, `?name=` names it) or as `multipart/form-data` (the
//! first file field); images are recognised by their bytes, never by the declared type
//! alone. `GET` returns the bytes to the uploader only.

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Multipart, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use draftsmith_core::api::Upload;
use draftsmith_core::{ErrorBody, ErrorCode, UploadId};
use draftsmith_store::NewUpload;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppIdPath, Query, RawBody, path_param};
use crate::routes::apps::visible_app;
use crate::{AppState, Settings};

/// What uploads may be: `[uploads]` in the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// Largest file accepted, in bytes.
    pub max_bytes: usize,
    /// Media types accepted. Images among them (`image/png`, `image/jpeg`, `image/webp`,
    /// `image/gif`) are recognised by their bytes; anything else must be UTF-8 text.
    pub types: Vec<String>,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            max_bytes: 5 * 1024 * 1024,
            types: [
                "image/png",
                "image/jpeg",
                "image/webp",
                "image/gif",
                "text/plain",
                "text/markdown",
                "text/csv",
                "application/json",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// Room for a multipart envelope around the largest file.
const MULTIPART_OVERHEAD: usize = 64 * 1024;
/// Longest file name kept, in characters.
const NAME_CHARS: usize = 200;

pub fn router(settings: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_upload))
        .routes(routes!(get_upload))
        .layer(DefaultBodyLimit::max(
            settings
                .uploads
                .max_bytes
                .saturating_add(MULTIPART_OVERHEAD),
        ))
}

/// `?name=` of a raw upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// The file's name (a raw body has none of its own).
    #[param(max_length = 200)]
    name: Option<String>,
}

/// A file as it arrived: its declared type, its name and its bytes.
struct Received {
    declared: String,
    name: Option<String>,
    bytes: Vec<u8>,
}

/// Store a file to attach to prompts: the raw body typed by `Content-Type`, or
/// `multipart/form-data` with one file field. Images must be PNG, JPEG, WebP or GIF by
/// their bytes; text files must be UTF-8.
#[utoipa::path(post, path = "/admin/apps/{app_id}/uploads", params(("app_id" = String, Path), UploadQuery),
    request_body(content = String, content_type = "text/plain",
        description = "the file as the raw body, typed by its Content-Type (`text/plain`, `text/markdown`, `text/csv`, `application/json`, or an image: `image/png`, `image/jpeg`, `image/webp`, `image/gif`), or a `multipart/form-data` form whose first file field is the file"),
    responses((status = 201, body = Upload), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, description = "larger than `uploads.max_bytes`", body = ErrorBody),
        (status = 415, description = "a type `uploads.types` does not allow, or bytes that are not what they claim", body = ErrorBody)))]
async fn create_upload(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> ApiResult<Response> {
    let app = visible_app(&state, &caller, app_id).await?;
    let limits = &state.settings.uploads;
    let received = receive(&state, request, query.name).await?;
    if received.bytes.len() > limits.max_bytes {
        return Err(too_large(limits.max_bytes));
    }
    let media_type = media_type(&received.declared, &received.bytes, &limits.types)?;
    let upload = state
        .store
        .create_upload(NewUpload {
            app: app.id,
            owner: caller.user_id.clone(),
            name: file_name(received.name.as_deref()),
            media_type,
            bytes: received.bytes,
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(upload)).into_response())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the file is larger than {limit} bytes"),
    )
    .detail("limit_bytes", limit)
}

/// The raw body, or the first file field of a multipart form.
async fn receive(state: &AppState, request: Request, name: Option<String>) -> ApiResult<Received> {
    let declared = declared_type(request.headers());
    if declared != "multipart/form-data" {
        let RawBody(bytes) =
            RawBody::from_request(request, state)
                .await
                .map_err(|e| match e.code() {
                    ErrorCode::PayloadTooLarge => too_large(state.settings.uploads.max_bytes),
                    _ => e,
                })?;
        return Ok(Received {
            declared,
            name,
            bytes: bytes.to_vec(),
        });
    }
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::validation("body", e.body_text()))?;
    let too_big = |status: StatusCode, text: String| {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(state.settings.uploads.max_bytes)
        } else {
            ApiError::validation("body", text)
        }
    };
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| too_big(e.status(), e.body_text()))?
    {
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            continue;
        };
        let declared = field
            .content_type()
            .map(essence)
            .unwrap_or_else(|| "application/octet-stream".into());
        let bytes = field
            .bytes()
            .await
            .map_err(|e| too_big(e.status(), e.body_text()))?;
        return Ok(Received {
            declared,
            name: name.or(Some(file_name)),
            bytes: bytes.to_vec(),
        });
    }
    Err(ApiError::validation("body", "the form has no file field"))
}

fn declared_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(essence)
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// `text/plain; charset=utf-8` → `text/plain`.
fn essence(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The image type the bytes are, by their magic numbers.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The stored media type: an image's from its bytes, a text file's as declared (and it must
/// be UTF-8); either must be an allowed type.
fn media_type(declared: &str, bytes: &[u8], allowed: &[String]) -> ApiResult<String> {
    let unsupported = |message: String| {
        ApiError::validation("content-type", message)
            .detail("media_type", declared)
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
    };
    let media = match sniff_image(bytes) {
        Some(image) => image.to_owned(),
        None if declared.starts_with("image/") => {
            return Err(unsupported(format!(
                "the bytes are not a PNG, JPEG, WebP or GIF image (declared {declared})"
            )));
        }
        None => {
            if std::str::from_utf8(bytes).is_err() {
                return Err(unsupported(format!(
                    "a {declared} upload must be UTF-8 text or a known image"
                )));
            }
            declared.to_owned()
        }
    };
    if !allowed.iter().any(|t| t.eq_ignore_ascii_case(&media)) {
        return Err(unsupported(format!(
            "{media} is not an accepted upload type (accepted: {})",
            allowed.join(", ")
        )));
    }
    Ok(media)
}

/// The last component of the given name, without control characters, shortened.
fn file_name(given: Option<&str>) -> String {
    let base = given
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(NAME_CHARS)
        .collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        "upload".into()
    } else {
        clean.to_owned()
    }
}

/// `{upload_id}` of an upload route: the caller's own upload on the app, else 404.
struct UploadRoute(Upload, Vec<u8>);

impl FromRequestParts<AppState> for UploadRoute {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let AppIdPath(app_id) = AppIdPath::from_request_parts(parts, state).await?;
        let app = visible_app(state, &caller, app_id).await?;
        let raw = path_param(parts, state, "upload_id").await?;
        let id: UploadId = raw.parse().map_err(|_| ApiError::not_found("upload"))?;
        let (upload, bytes) = state.store.upload_bytes(id).await?;
        if upload.app_id != app.id || upload.owner != caller.user_id {
            return Err(ApiError::not_found("upload"));
        }
        Ok(Self(upload, bytes))
    }
}

/// An upload's bytes, to its uploader only (the UI's thumbnails).
#[utoipa::path(get, path = "/admin/apps/{app_id}/uploads/{upload_id}",
    params(("app_id" = String, Path), ("upload_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "the file's bytes, typed by its media type", content_type = "*/*", body = Vec<u8>),
        (status = 404, body = ErrorBody)))]
async fn get_upload(UploadRoute(upload, bytes): UploadRoute) -> ApiResult<Response> {
    let mut headers = HeaderMap::new();
    let value =
        |v: &str| HeaderValue::from_str(v).map_err(|e| ApiError::internal("upload header", &e));
    headers.insert(header::CONTENT_TYPE, value(&upload.media_type)?);
    headers.insert(header::ETAG, value(&format!("\"{}\"", upload.sha256))?);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    Ok((headers, bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_bytes() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_image(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF89a.."), Some("image/gif"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image(b"<svg></svg>"), None);
    }

    #[test]
    fn a_declared_image_must_be_one() {
        let allowed = UploadsConfig::default().types;
        let err = media_type("image/png", b"not a png", &allowed).err();
        assert_eq!(err.map(|e| e.code()), Some(ErrorCode::ValidationFailed));
        let png = media_type("text/plain", b"\x89PNG\r\n\x1a\n", &allowed);
        assert_eq!(png.ok().as_deref(), Some("image/png"));
        assert!(media_type("text/html", b"<p>", &allowed).is_err());
        assert!(media_type("text/plain", &[0xff, 0xfe, 0x00], &allowed).is_err());
        assert_eq!(
            media_type("text/markdown", b"# hi", &allowed)
                .ok()
                .as_deref(),
            Some("text/markdown")
        );
    }

    #[test]
    fn names_keep_only_their_last_component() {
        assert_eq!(file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(file_name(Some("C:\\x\\shot.png")), "shot.png");
        assert_eq!(file_name(Some("..")), "upload");
        assert_eq!(file_name(None), "upload");
    }
}
