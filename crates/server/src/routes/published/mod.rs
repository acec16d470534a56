//! Published apps, served at `/p/{slug}/…` on the service's own origin (with a `sandbox`
//! CSP, so a published page's scripts run in an opaque origin and never act as the signed-in
//! builder) and, when an apps domain is configured, at `{slug}.{domain}` as a normal origin.
//! Every answer comes from memory once hot: strong `ETag`s and 304s, immutable caching for
//! hashed asset names, precompressed brotli or gzip by `Accept-Encoding`, single byte
//! ranges, and a fallback to `index.html` for paths without an extension.

mod conditional;

use self::conditional::{Range, cache_control, if_range_holds, not_modified, range};

use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use draftsmith_core::publish::Visibility;
use draftsmith_store::StoredReleaseFile;

use crate::AppState;
use crate::error::ApiResult;
use crate::sites::Site;

/// What a published page may do on the service's origin: everything a page needs except
/// sharing that origin.
const SANDBOX_CSP: &str =
    "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/p/{slug}", axum::routing::get(slug_root))
        .route("/p/{slug}/", axum::routing::get(index_on_origin))
        .route("/p/{slug}/{*path}", axum::routing::get(file_on_origin))
}

async fn slug_root(UrlPath(slug): UrlPath<String>) -> Response {
    let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/p/{slug}/")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn index_on_origin(
    State(state): State<AppState>,
    UrlPath(slug): UrlPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(&state, &slug, "", &headers, true).await
}

async fn file_on_origin(
    State(state): State<AppState>,
    UrlPath((slug, path)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(&state, &slug, &path, &headers, true).await
}

/// Serves `{slug}.{apps domain}` requests as published apps; everything else goes on to
/// the API.
pub async fn by_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(domain) = state.settings.apps_domain.as_deref() else {
        return next.run(request).await;
    };
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or(h).to_ascii_lowercase());
    let slug = host
        .as_deref()
        .and_then(|h| h.strip_suffix(domain)?.strip_suffix('.'));
    let Some(slug) = slug.filter(|s| !s.is_empty() && !s.contains('.')) else {
        return next.run(request).await;
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = request.uri().path().trim_start_matches('/');
    let path = percent_decode(path);
    let head = request.method() == Method::HEAD;
    let response = serve(&state, slug, &path, request.headers(), false).await;
    let mut response = response.into_response();
    if head {
        *response.body_mut() = Body::empty();
    }
    response
}

fn percent_decode(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

async fn serve(
    state: &AppState,
    slug: &str,
    path: &str,
    headers: &HeaderMap,
    on_origin: bool,
) -> ApiResult<Response> {
    let Some(site) = state.sites.site(state.store.as_ref(), slug).await? else {
        return Ok(not_found_page(on_origin));
    };
    let path = match unlock(&site, path, headers) {
        Access::Granted(path) => path,
        Access::Refused => return Ok(refused(slug)),
    };
    let Some(file) = find(&site, path) else {
        return Ok(not_found_page(on_origin));
    };
    let private = site.publication.visibility == Visibility::Private;
    let mut response = answer(state, file, headers, private).await?;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    if on_origin {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SANDBOX_CSP),
        );
        // The page has an opaque origin, so its module scripts are CORS fetches.
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    Ok(response)
}

enum Access<'a> {
    Granted(&'a str),
    Refused,
}

/// A private site opens for its key, given as the password of HTTP Basic authentication or
/// as the path's first segment `~{key}` (so relative asset URLs carry it).
fn unlock<'a>(site: &Site, path: &'a str, headers: &HeaderMap) -> Access<'a> {
    let Some(expected) = site.publication.key_hash.as_deref() else {
        return match site.publication.visibility {
            Visibility::Public => Access::Granted(path),
            Visibility::Private => Access::Refused,
        };
    };
    if site.publication.visibility == Visibility::Public {
        return Access::Granted(path);
    }
    let matches = |key: &str| crate::auth::hash_secret(key) == expected;
    if let Some(rest) = path.strip_prefix('~') {
        let (key, rest) = rest.split_once('/').unwrap_or((rest, ""));
        return if matches(key) {
            Access::Granted(rest)
        } else {
            Access::Refused
        };
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match basic.as_deref().and_then(|b| b.split_once(':')) {
        Some((_, key)) if matches(key) => Access::Granted(path),
        _ => Access::Refused,
    }
}

/// The file at `path`; `index.html` for a directory, and for a path whose last segment has
/// no extension (a client-side route), the site's `index.html`.
fn find<'a>(site: &'a Site, path: &str) -> Option<&'a StoredReleaseFile> {
    let index;
    let path = if path.is_empty() || path.ends_with('/') {
        index = format!("{path}index.html");
        index.as_str()
    } else {
        path
    };
    if let Some(file) = site.files.get(path) {
        return Some(file);
    }
    let last = path.rsplit('/').next().unwrap_or(path);
    if !last.contains('.') {
        return site.files.get("index.html");
    }
    // A page served for a deep client-side route (`/p/app/settings/profile`) asks for its
    // relative assets under that route (`settings/assets/x.js`): the site's own file with
    // the longest matching suffix answers.
    let mut rest = path;
    while let Some((_, tail)) = rest.split_once('/') {
        if let Some(file) = site.files.get(tail) {
            return Some(file);
        }
        rest = tail;
    }
    None
}

/// The encoding chosen for `file` by `Accept-Encoding` (brotli first, then gzip).
fn negotiate<'a>(
    file: &'a StoredReleaseFile,
    headers: &HeaderMap,
) -> Option<(&'static str, &'a draftsmith_store::Encoded)> {
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let accepts = |name: &str| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            coding.eq_ignore_ascii_case(name) && !refused
        })
    };
    if let Some(br) = file.brotli.as_ref().filter(|_| accepts("br")) {
        return Some(("br", br));
    }
    file.gzip
        .as_ref()
        .filter(|_| accepts("gzip"))
        .map(|gz| ("gzip", gz))
}

async fn answer(
    state: &AppState,
    file: &StoredReleaseFile,
    headers: &HeaderMap,
    private: bool,
) -> ApiResult<Response> {
    let ranged = headers.contains_key(header::RANGE);
    // A range applies to the identity bytes; compression is for whole answers.
    let encoded = if ranged {
        None
    } else {
        negotiate(file, headers)
    };
    let etag = match encoded {
        Some((coding, _)) => format!("\"{}-{coding}\"", file.file.sha256),
        None => format!("\"{}\"", file.file.sha256),
    };
    let mut out = HeaderMap::new();
    let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
    out.insert(header::ETAG, value(&etag));
    out.insert(
        header::CACHE_CONTROL,
        value(&cache_control(&file.file.path, private)),
    );
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if not_modified(headers, &etag, &file.file.sha256) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    out.insert(header::CONTENT_TYPE, value(&file.file.content_type));
    let hash = encoded.map_or(&file.file.sha256, |(_, e)| &e.hash);
    let bytes = state.sites.blob(state.store.as_ref(), hash).await?;
    if let Some((coding, _)) = encoded {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    if ranged && if_range_holds(headers, &etag) {
        let total = bytes.len() as u64;
        match range(headers, total) {
            Range::Whole => {}
            Range::Part(start, end) => {
                out.insert(
                    header::CONTENT_RANGE,
                    value(&format!("bytes {start}-{end}/{total}")),
                );
                let part = bytes.slice(start as usize..=end as usize);
                return Ok((StatusCode::PARTIAL_CONTENT, out, part).into_response());
            }
            Range::Unsatisfiable => {
                out.insert(header::CONTENT_RANGE, value(&format!("bytes */{total}")));
                return Ok((StatusCode::RANGE_NOT_SATISFIABLE, out).into_response());
            }
        }
    }
    Ok((StatusCode::OK, out, bytes).into_response())
}

fn not_found_page(on_origin: bool) -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        "<!doctype html><meta charset=utf-8><title>Not found</title>\
         <h1>Not found</h1><p>Nothing is published at this address.</p>",
    )
        .into_response();
    if on_origin {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SANDBOX_CSP),
        );
    }
    response
}

fn refused(slug: &str) -> Response {
    let mut response = (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        "This app is private: open it with its access key.\n",
    )
        .into_response();
    if let Ok(challenge) = HeaderValue::from_str(&format!("Basic realm=\"{slug}\"")) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::conditional::{Range, hashed_name, range};
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                k.clone(),
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
            );
        }
        h
    }

    #[test]
    fn hashed_names_are_recognised() {
        assert!(hashed_name("assets/index-BxK3c9aQ.js"));
        assert!(hashed_name("assets/index-Bx-3c9aQ.js"));
        assert!(hashed_name("assets/logo.4f3a2b1c9d.svg"));
        assert!(!hashed_name("index.html"));
        assert!(!hashed_name("assets/my-component.js"));
        assert!(!hashed_name("favicon.ico"));
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        let r = |v: &str, total| range(&headers(&[(header::RANGE, v)]), total);
        assert!(matches!(r("bytes=0-9", 100), Range::Part(0, 9)));
        assert!(matches!(r("bytes=90-", 100), Range::Part(90, 99)));
        assert!(matches!(r("bytes=-10", 100), Range::Part(90, 99)));
        assert!(matches!(r("bytes=50-500", 100), Range::Part(50, 99)));
        assert!(matches!(r("bytes=100-", 100), Range::Unsatisfiable));
        assert!(matches!(r("bytes=0-1,5-6", 100), Range::Whole));
        assert!(matches!(r("items=0-1", 100), Range::Whole));
        assert!(matches!(r("bytes=9-3", 100), Range::Whole));
    }

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("a%20b/%E2%9C%93"), "a b/✓");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
