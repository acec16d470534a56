//! Published apps, served at `/p/{slug}/…` on the service's own origin (with a `sandbox`
//! CSP, so a published page's scripts run in an opaque origin and never act as the signed-in
//! builder) and, when an apps domain is configured, at `{slug}.{domain}` as a normal origin.
//! Every answer comes from memory once hot: strong `ETag`s and 304s, immutable caching for
//! hashed asset names, precompressed brotli or gzip by `Accept-Encoding`, single byte
//! ranges, and a fallback to `index.html` for paths without an extension.

mod conditional;

use self::conditional::{Range, if_range_holds, not_modified, range};

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use draftsmith_core::ErrorCode;
use draftsmith_core::publish::Visibility;

use crate::error::{ApiError, ApiResult};
use crate::sites::{ServedFile, Site};
use crate::{AppState, Settings};

/// What a published page may do on the service's origin: everything a page needs except
/// sharing that origin.
const SANDBOX_CSP: &str =
    "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

/// A request for a published app, as told by its host or its path.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// `/p/{slug}`: on to `/p/{slug}/`.
    Redirect(String),
    /// A file of the app at `slug`; `on_origin` when it came under `/p/` of the service's
    /// own origin (rather than at `{slug}.{apps domain}`).
    File {
        slug: String,
        path: String,
        on_origin: bool,
    },
    /// A method other than `GET` or `HEAD`.
    NotAllowed { on_origin: bool },
}

/// Whether `request` is for a published app: `{slug}.{apps domain}` by its `Host` when an
/// apps domain is configured, else a `/p/{slug}…` path. Everything else is the API's.
pub fn claim<B>(settings: &Settings, request: &Request<B>) -> Option<Claim> {
    let readable = matches!(*request.method(), Method::GET | Method::HEAD);
    let path = request.uri().path();
    if let Some(slug) = by_host(settings, request) {
        if !readable {
            return Some(Claim::NotAllowed { on_origin: false });
        }
        return Some(Claim::File {
            slug: slug.to_ascii_lowercase(),
            path: percent_decode(path.trim_start_matches('/')),
            on_origin: false,
        });
    }
    let rest = path.strip_prefix("/p/")?;
    let (slug, file) = match rest.split_once('/') {
        Some((slug, file)) => (slug, Some(file)),
        None => (rest, None),
    };
    if slug.is_empty() {
        return None;
    }
    if !readable {
        return Some(Claim::NotAllowed { on_origin: true });
    }
    let slug = percent_decode(slug);
    Some(match file {
        None => Claim::Redirect(slug),
        Some(file) => Claim::File {
            slug,
            path: percent_decode(file),
            on_origin: true,
        },
    })
}

/// The slug a request's `Host` names under the apps domain.
fn by_host<'a, B>(settings: &Settings, request: &'a Request<B>) -> Option<&'a str> {
    let domain = settings.apps_domain.as_deref()?;
    let host = request.headers().get(header::HOST)?.to_str().ok()?;
    let host = host.split(':').next().unwrap_or(host);
    let slug = host
        .len()
        .checked_sub(domain.len() + 1)
        .filter(|&at| {
            host.is_char_boundary(at)
                && host[at..].starts_with('.')
                && host[at + 1..].eq_ignore_ascii_case(domain)
        })
        .map(|at| &host[..at])?;
    (!slug.is_empty() && !slug.contains('.')).then_some(slug)
}

/// The answer to a claimed request with the head `request`.
pub async fn answer_claim(state: &AppState, claim: Claim, request: &Parts) -> Response {
    let (slug, path, on_origin) = match claim {
        Claim::Redirect(slug) => return redirect(&slug),
        Claim::NotAllowed { on_origin: true } => {
            return ApiError::new(
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
            .into_response();
        }
        Claim::NotAllowed { on_origin: false } => {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        Claim::File {
            slug,
            path,
            on_origin,
        } => (slug, path, on_origin),
    };
    // hyper answers a HEAD with the head alone, its length that of the body it leaves out.
    serve(state, &slug, &path, &request.headers, on_origin)
        .await
        .into_response()
}

fn redirect(slug: &str) -> Response {
    let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/p/{slug}/")) {
        response.headers_mut().insert(header::LOCATION, location);
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
fn find<'a>(site: &'a Site, path: &str) -> Option<&'a ServedFile> {
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
    file: &'a ServedFile,
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
    if let Some(br) = file.stored.brotli.as_ref().filter(|_| accepts("br")) {
        return Some(("br", br));
    }
    file.stored
        .gzip
        .as_ref()
        .filter(|_| accepts("gzip"))
        .map(|gz| ("gzip", gz))
}

async fn answer(
    state: &AppState,
    file: &ServedFile,
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
    let etag = file.etag(encoded.map(|(coding, _)| coding));
    let sha = &file.stored.file.sha256;
    let mut out = HeaderMap::with_capacity(16);
    // Made from a valid string when the release was loaded.
    let tag = etag.to_str().unwrap_or_default();
    out.insert(header::ETAG, etag.clone());
    out.insert(header::CACHE_CONTROL, file.cache_control(private).clone());
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if not_modified(headers, tag, sha) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    out.insert(header::CONTENT_TYPE, file.content_type.clone());
    let hash = encoded.map_or(sha, |(_, e)| &e.hash);
    let bytes = state.sites.blob(state.store.as_ref(), hash).await?;
    if let Some((coding, _)) = encoded {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    if ranged && if_range_holds(headers, tag) {
        let total = bytes.len() as u64;
        let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
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
    use super::conditional::{Range, range};
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

    fn settings(apps_domain: Option<&str>) -> Settings {
        Settings {
            max_file_bytes: 1,
            max_json_bytes: 1,
            http: crate::edge::HttpConfig::default(),
            apps_domain: apps_domain.map(str::to_owned),
            uploads: crate::routes::uploads::UploadsConfig::default(),
        }
    }

    fn request(method: Method, host: &str, path: &str) -> Request<()> {
        let mut request = Request::new(());
        *request.method_mut() = method;
        *request.uri_mut() = path.parse().unwrap_or_default();
        request.headers_mut().insert(
            header::HOST,
            HeaderValue::from_str(host).unwrap_or(HeaderValue::from_static("")),
        );
        request
    }

    #[test]
    fn published_requests_are_told_by_path_or_host_and_the_rest_left_to_the_api() {
        let plain = settings(None);
        let on = |method, path| claim(&plain, &request(method, "svc.test", path));
        let file = |slug: &str, path: &str, on_origin| {
            Some(Claim::File {
                slug: slug.into(),
                path: path.into(),
                on_origin,
            })
        };
        assert_eq!(
            on(Method::GET, "/p/shop"),
            Some(Claim::Redirect("shop".into()))
        );
        assert_eq!(on(Method::GET, "/p/shop/"), file("shop", "", true));
        assert_eq!(
            on(Method::HEAD, "/p/shop/a%20b/c.js?v=1"),
            file("shop", "a b/c.js", true)
        );
        assert_eq!(
            on(Method::POST, "/p/shop/x"),
            Some(Claim::NotAllowed { on_origin: true })
        );
        for api in ["/p/", "/p//x", "/pp/shop/", "/admin/apps", "/"] {
            assert_eq!(on(Method::GET, api), None, "{api}");
        }
        let domain = settings(Some("apps.test"));
        let at = |method, host| claim(&domain, &request(method, host, "/assets/x.js"));
        assert_eq!(
            at(Method::GET, "Shop.Apps.Test:8080"),
            file("shop", "assets/x.js", false)
        );
        assert_eq!(
            at(Method::PUT, "shop.apps.test"),
            Some(Claim::NotAllowed { on_origin: false })
        );
        for other in [
            "apps.test",
            "a.b.apps.test",
            "shopapps.test",
            "svc.test",
            ".apps.test",
        ] {
            assert_eq!(at(Method::GET, other), None, "{other}");
        }
    }

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("a%20b/%E2%9C%93"), "a b/✓");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
