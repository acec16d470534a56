//! Sending a planned reply: SSE frames paced and cut as scripted, or one JSON body after the
//! scripted delays; and errors in the provider's shape.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;
use tokio::sync::watch;

use crate::plan::{Frame, Meta, Plan};
use crate::request::Dialect;
use crate::{anthropic, openai};

/// Pause before a scripted cut, during which the bytes already written reach the socket.
const FLUSH_BEFORE_CUT: Duration = Duration::from_millis(5);

/// The provider-shaped error response, with `retry-after` when given.
pub(super) fn error_response(
    dialect: Dialect,
    status: u16,
    kind: Option<&str>,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    let body = match dialect {
        Dialect::OpenAi => openai::error_body(status, kind, message),
        Dialect::Anthropic => anthropic::error_body(status, kind, message),
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (code, axum::Json(body)).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The reply as an SSE body, `chunk_delay` between events.
pub(super) fn streamed(
    dialect: Dialect,
    meta: &Meta,
    plan: &Plan,
    chunk_delay: Duration,
    stop: watch::Receiver<bool>,
) -> Response {
    let frames = match dialect {
        Dialect::OpenAi => openai::stream(meta, plan),
        Dialect::Anthropic => anthropic::stream(meta, plan),
    };
    let stream = frame_stream(frames, chunk_delay, stop);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The reply as one JSON body, sent after all its delays; a cut drops the connection and a
/// malformed step replaces the body.
pub(super) async fn whole(
    dialect: Dialect,
    meta: &Meta,
    plan: &Plan,
    mut stop: watch::Receiver<bool>,
) -> Response {
    if !pause(&mut stop, Duration::from_millis(plan.total_delay_ms())).await {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if plan.has_cut() {
        let cut = futures::stream::once(async { Err::<Bytes, _>(cut_error()) });
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(cut))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    if let Some(raw) = plan.malformed() {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            raw.to_owned(),
        )
            .into_response();
    }
    let json = match dialect {
        Dialect::OpenAi => openai::completion(meta, plan),
        Dialect::Anthropic => anthropic::message(meta, plan),
    };
    axum::Json(json).into_response()
}

/// The error that makes hyper drop the connection mid-body.
fn cut_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "mock-model: scripted cut",
    )
}

/// Sleeps unless the server stops first; `false` when it stopped.
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    if duration.is_zero() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(duration) => true,
        _ = stop.wait_for(|stopped| *stopped) => false,
    }
}

/// Plays frames as a body stream: pauses between events, aborts on a cut or on shutdown.
fn frame_stream(
    frames: Vec<Frame>,
    chunk_delay: Duration,
    stop: watch::Receiver<bool>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    struct Player {
        frames: VecDeque<Frame>,
        first: bool,
        done: bool,
        chunk_delay: Duration,
        stop: watch::Receiver<bool>,
    }
    let player = Player {
        frames: frames.into(),
        first: true,
        done: false,
        chunk_delay,
        stop,
    };
    futures::stream::unfold(player, |mut p| async move {
        if p.done {
            return None;
        }
        loop {
            let frame = p.frames.pop_front()?;
            match frame {
                Frame::Delay(ms) => {
                    if !pause(&mut p.stop, Duration::from_millis(ms)).await {
                        p.done = true;
                        return Some((Err(cut_error()), p));
                    }
                }
                Frame::Cut => {
                    // Let hyper flush what was sent so far, so the client sees a stream that
                    // breaks off rather than no response at all.
                    tokio::time::sleep(FLUSH_BEFORE_CUT).await;
                    p.done = true;
                    return Some((Err(cut_error()), p));
                }
                Frame::Data(bytes) => {
                    let wait = if p.first {
                        Duration::ZERO
                    } else {
                        p.chunk_delay
                    };
                    p.first = false;
                    if !pause(&mut p.stop, wait).await {
                        p.done = true;
                        return Some((Err(cut_error()), p));
                    }
                    return Some((Ok(bytes), p));
                }
            }
        }
    })
}
