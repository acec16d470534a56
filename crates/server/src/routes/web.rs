//! The builder web UI: plain ES modules and one stylesheet embedded in the binary (the
//! machines have no internet, so no CDN), served at `/` and `/ui/assets/…` with an ETag so
//! a browser revalidates cheaply instead of caching a stale UI across upgrades.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use draftsmith_core::ErrorCode;
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web");

/// The page and its assets; not part of the OpenAPI document (they are not API).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/assets/{*path}", get(asset))
}

/// One embedded file with its precomputed strong ETag.
struct Asset {
    bytes: &'static [u8],
    etag: String,
    content_type: &'static str,
}

fn assets() -> &'static HashMap<String, Asset> {
    static ASSETS: OnceLock<HashMap<String, Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let mut all = HashMap::new();
        collect(&WEB, &mut all);
        all
    })
}

fn collect(dir: &'static Dir<'static>, into: &mut HashMap<String, Asset>) {
    for file in dir.files() {
        let path = file.path().to_string_lossy().replace('\\', "/");
        let etag = format!(
            "\"{}\"",
            &hex::encode(Sha256::digest(file.contents()))[..32]
        );
        into.insert(
            path.clone(),
            Asset {
                bytes: file.contents(),
                etag,
                content_type: content_type(&path),
            },
        );
    }
    for sub in dir.dirs() {
        collect(sub, into);
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path == "index.html" {
        return ApiError::not_found("asset").into_response();
    }
    serve(&path, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = assets().get(path) else {
        return ApiError::new(ErrorCode::NotFound, format!("no UI asset {path:?}")).into_response();
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == asset.etag));
    let mut out = HeaderMap::new();
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        out.insert(header::ETAG, etag);
    }
    // Not fingerprinted, so revalidate every time; a 304 costs one round trip.
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if path == "index.html" {
        out.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; frame-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            ),
        );
    }
    if fresh {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    (StatusCode::OK, out, asset.bytes).into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{assets, content_type};

    #[test]
    fn every_asset_is_embedded_with_a_known_type() {
        let all = assets();
        assert!(all.contains_key("index.html"));
        assert!(all.contains_key("app.css"));
        assert!(all.contains_key("js/main.js"));
        for path in all.keys() {
            assert_ne!(content_type(path), "application/octet-stream", "{path}");
        }
    }

    #[test]
    fn the_page_names_only_embedded_assets() {
        let page = std::str::from_utf8(assets()["index.html"].bytes).unwrap();
        let refs: Vec<&str> = page
            .split("\"/ui/assets/")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert!(refs.len() >= 3, "{refs:?}");
        for path in refs {
            assert!(assets().contains_key(path), "index.html names {path}");
        }
        // Every module is preloaded, so the page loads without an import waterfall.
        for path in assets()
            .keys()
            .filter(|p| p.starts_with("js/") && *p != "js/main.js")
        {
            assert!(
                page.contains(&format!("modulepreload\" href=\"/ui/assets/{path}")),
                "{path}"
            );
        }
    }
}
