//! The live preview's proxy: a request under the capability prefix `/preview/{app}/{token}/`
//! goes to the app's dev server under [`LIVE_BASE`] through its endpoint (the sandbox's
//! forwarded Unix socket), with nothing of the builder's (cookies, credentials, origin,
//! referrer); in a text answer `LIVE_BASE` becomes the prefix, so the page's URLs stay
//! under its capability URL. The HMR WebSocket is relayed byte for byte.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use draftsmith_sandbox::{DevEndpoint, DevServerStatus, LIVE_BASE};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::edge::HeldOpen;
use crate::error::{ApiError, ApiResult};

/// Largest text answer rewritten (a dev server's modules are far smaller).
const MAX_TEXT: usize = 32 * 1024 * 1024;

/// Request headers a dev server gets; everything else (cookies, authorization, origin,
/// referrer, the builder's host) stays here.
const FORWARDED: &[HeaderName] = &[
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::RANGE,
];
/// The WebSocket handshake's headers, forwarded with an upgrade only.
const UPGRADE_HEADERS: &[HeaderName] = &[
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_EXTENSIONS,
];
/// Answer headers passed back (the page's own security headers are added by the caller).
const RETURNED: &[HeaderName] = &[
    header::CONTENT_TYPE,
    header::ETAG,
    header::LAST_MODIFIED,
    header::LOCATION,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
];

/// Sends `request` for `rest` (the path under the prefix) to the dev server and answers
/// with what it says, `prefix` put back in place of [`LIVE_BASE`].
pub(super) async fn forward(
    status: &DevServerStatus,
    prefix: &str,
    rest: &str,
    mut request: Request,
) -> ApiResult<Response> {
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let websocket = is_websocket(request.headers());
    let mut upstream = hyper::Request::builder()
        .method(request.method().clone())
        .uri(format!("{LIVE_BASE}{rest}{query}"))
        .header(header::HOST, "localhost");
    let pass = |name: &HeaderName| {
        FORWARDED.contains(name) || (websocket && UPGRADE_HEADERS.contains(name))
    };
    for (name, value) in request.headers().iter().filter(|(n, _)| pass(n)) {
        upstream = upstream.header(name, value);
    }
    let client_side = websocket.then(|| hyper::upgrade::on(&mut request));
    let held = request.extensions().get::<HeldOpen>().cloned();
    let body = if websocket {
        Body::empty()
    } else {
        request.into_body()
    };
    let upstream = upstream
        .body(body)
        .map_err(|e| ApiError::internal("preview request", &e))?;
    let mut answer = send(&status.endpoint, upstream).await?;
    if answer.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_side) = client_side
    {
        let server_side = hyper::upgrade::on(&mut answer);
        tokio::spawn(relay(client_side, server_side, held));
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        for name in UPGRADE_HEADERS
            .iter()
            .chain([&header::SEC_WEBSOCKET_ACCEPT])
        {
            if let Some(value) = answer.headers().get(name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        return Ok(response);
    }
    rewritten(answer, prefix).await
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// One request over a fresh connection to the dev server (its answer may upgrade it).
async fn send(
    endpoint: &DevEndpoint,
    request: hyper::Request<Body>,
) -> ApiResult<hyper::Response<Incoming>> {
    match endpoint {
        DevEndpoint::Unix(socket) => {
            let stream = tokio::net::UnixStream::connect(socket).await;
            exchange(stream.map_err(unreachable)?, request).await
        }
        DevEndpoint::Tcp(port) => {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", *port)).await;
            exchange(stream.map_err(unreachable)?, request).await
        }
    }
}

async fn exchange<S>(
    stream: S,
    request: hyper::Request<Body>,
) -> ApiResult<hyper::Response<Incoming>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(unreachable)?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "a dev server connection ended with an error");
        }
    });
    sender.send_request(request).await.map_err(unreachable)
}

fn unreachable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        draftsmith_core::ErrorCode::CodingAgentSandboxFailed,
        format!("the app's dev server did not answer: {e}"),
    )
}

/// The dev server's answer with its kept headers; text has [`LIVE_BASE`] replaced by
/// `prefix`, anything else streams through.
async fn rewritten(answer: hyper::Response<Incoming>, prefix: &str) -> ApiResult<Response> {
    let (parts, body) = answer.into_parts();
    let mut headers = HeaderMap::new();
    for name in RETURNED {
        if let Some(value) = parts.headers.get(name) {
            headers.insert(name, value.clone());
        }
    }
    if let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
        let moved = location.replacen(LIVE_BASE, prefix, 1);
        headers.insert(header::LOCATION, header_value(&moved)?);
    }
    let text = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_text);
    let body = if text {
        let bytes = http_body_util::Limited::new(body, MAX_TEXT)
            .collect()
            .await
            .map_err(|e| ApiError::internal("preview answer", &e))?
            .to_bytes();
        let replaced = replace_all(&bytes, LIVE_BASE.as_bytes(), prefix.as_bytes());
        Body::from(replaced)
    } else {
        Body::new(body.map_err(axum::Error::new))
    };
    Ok((parts.status, headers, body).into_response())
}

fn header_value(text: &str) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(text).map_err(|e| ApiError::internal("header", &e))
}

/// Whether a content type is text a page's URLs may appear in.
fn is_text(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.starts_with("text/")
        || essence.ends_with("javascript")
        || essence.ends_with("json")
        || essence.ends_with("+xml")
}

/// `haystack` with every `from` replaced by `to`.
fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Copies bytes both ways between the page's upgraded connection and the dev server's,
/// keeping the page's connection from counting as idle meanwhile.
async fn relay(
    client: hyper::upgrade::OnUpgrade,
    server: hyper::upgrade::OnUpgrade,
    held: Option<HeldOpen>,
) {
    let _held = held.as_ref().map(HeldOpen::hold);
    let (Ok(client), Ok(server)) = (client.await, server.await) else {
        tracing::debug!("a preview WebSocket upgrade failed");
        return;
    };
    let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
        tracing::debug!(error = %e, "a preview WebSocket ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_base_is_replaced_and_nothing_else() {
        let page =
            format!("<script src=\"{LIVE_BASE}@vite/client\"></script>{LIVE_BASE}src/a.js /x");
        let out = replace_all(page.as_bytes(), LIVE_BASE.as_bytes(), b"/preview/a/t/");
        assert_eq!(
            String::from_utf8(out).unwrap_or_default(),
            "<script src=\"/preview/a/t/@vite/client\"></script>/preview/a/t/src/a.js /x"
        );
    }

    #[test]
    fn text_is_what_holds_urls() {
        assert!(is_text("text/javascript"));
        assert!(is_text("application/javascript; charset=utf-8"));
        assert!(is_text("text/css"));
        assert!(is_text("application/json"));
        assert!(!is_text("image/png"));
        assert!(!is_text("font/woff2"));
    }
}
