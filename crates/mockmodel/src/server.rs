//! The HTTP side: routes, scenario and attempt selection, recording, streaming bodies.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::cache::PromptCache;
use crate::plan::{Frame, Meta, Plan, estimate_tokens};
use crate::request::{Dialect, Inbound};
use crate::script::{Attempt, ErrorReply, Finish, Reply, Script, Step};
use crate::{RecordedRequest, ReportedUsage};
use crate::{anthropic, openai};

/// The model name listed by `GET /v1/models`.
pub(crate) const MODEL_NAME: &str = "coder";

/// Pause before a scripted cut, during which the bytes already written reach the socket.
const FLUSH_BEFORE_CUT: Duration = Duration::from_millis(5);

/// Largest request body accepted; agent histories get big.
const BODY_LIMIT: usize = 256 * 1024 * 1024;

/// State shared by all requests of one server.
#[derive(Debug)]
pub(crate) struct Shared {
    script: Script,
    /// Requests seen so far per (scenario index, turn index), for attempt selection.
    counters: Mutex<HashMap<(usize, usize), usize>>,
    requests: Mutex<Vec<RecordedRequest>>,
    violations: Mutex<Vec<String>>,
    next_id: AtomicU64,
    cache: PromptCache,
}

impl Shared {
    pub(crate) fn new(script: Script) -> Shared {
        Shared {
            script,
            counters: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            cache: PromptCache::default(),
        }
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub(crate) fn violations(&self) -> Vec<String> {
        lock(&self.violations).clone()
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a request; returns its index.
    fn record(&self, request: RecordedRequest) -> usize {
        let mut requests = lock(&self.requests);
        requests.push(request);
        requests.len() - 1
    }
}

/// Locks a mutex, ignoring poisoning (the data stays usable: only appends happen under it).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What handlers get: the shared state and the shutdown signal for open streams.
#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
}

/// Serves `shared` on `listener` until `shutdown` completes; open streams are then cut.
pub(crate) async fn run(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let app = App {
        shared,
        stop: stop_rx,
    };
    let router = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(models))
        .route("/_mock/requests", get(recorded))
        .route("/_mock/violations", get(violations))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app);
    // Like a real provider: every streamed chunk leaves at once (no Nagle delay).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await
}

async fn chat_completions(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request {
        dialect: Dialect::OpenAi,
        path: uri.path(),
        credential: credential(&headers),
    };
    handle(&app, request, &body).await
}

async fn messages(State(app): State<App>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request = Request {
        dialect: Dialect::Anthropic,
        path: uri.path(),
        credential: credential(&headers),
    };
    handle(&app, request, &body).await
}

/// What a model request says besides its body.
struct Request<'a> {
    dialect: Dialect,
    path: &'a str,
    credential: Option<String>,
}

/// The API key a request carries: `Authorization: Bearer …` (OpenAI) or `x-api-key`
/// (Anthropic).
fn credential(headers: &HeaderMap) -> Option<String> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    value("authorization")
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).to_owned())
        .or_else(|| value("x-api-key").map(str::to_owned))
}

async fn models() -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{
            "id": MODEL_NAME,
            "object": "model",
            "created": 0,
            "owned_by": "draftsmith-mockmodel",
        }],
    }))
    .into_response()
}

async fn recorded(State(app): State<App>) -> Response {
    axum::Json(app.shared.requests()).into_response()
}

async fn violations(State(app): State<App>) -> Response {
    axum::Json(app.shared.violations()).into_response()
}

async fn not_found(uri: Uri) -> Response {
    let message = format!("mock-model: no route for {}", uri.path());
    error_response(Dialect::OpenAi, 404, None, &message, None)
}

/// The provider-shaped error response, with `retry-after` when given.
fn error_response(
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

/// The reply played once a scenario has no turn left.
fn finished_reply() -> Reply {
    Reply {
        steps: vec![Step::Text {
            text: "(script finished)".to_owned(),
            chunk: None,
        }],
        finish: Some(Finish::Stop),
        usage: None,
    }
}

/// One model request: check, choose, record, answer.
async fn handle(app: &App, request: Request<'_>, raw: &[u8]) -> Response {
    let Request {
        dialect,
        path,
        credential,
    } = request;
    let shared = &app.shared;
    let body: Value = match serde_json::from_slice(raw) {
        Ok(body) => body,
        Err(e) => {
            shared.record(RecordedRequest {
                path: path.to_owned(),
                body: Value::String(String::from_utf8_lossy(raw).into_owned()),
                scenario: String::new(),
                turn: 0,
                attempt: 0,
                credential,
                usage: None,
            });
            let message = format!("mock-model: request body is not JSON: {e}");
            return error_response(dialect, 400, None, &message, None);
        }
    };
    let inbound = Inbound::read(dialect, &body);

    if !inbound.violations.is_empty() {
        let message = format!(
            "mock-model invariant violated: {}",
            inbound.violations.join("; ")
        );
        tracing::error!(path, %message, "mock-model request breaks the tool-result invariant");
        lock(&shared.violations).push(message.clone());
        shared.record(RecordedRequest {
            path: path.to_owned(),
            body,
            scenario: String::new(),
            turn: inbound.turn,
            attempt: 0,
            credential,
            usage: None,
        });
        return error_response(dialect, 400, Some("invalid_request_error"), &message, None);
    }

    let found = shared.script.scenarios.iter().enumerate().find(|(_, s)| {
        s.matcher
            .as_ref()
            .is_none_or(|m| inbound.match_text.contains(&m.contains))
    });
    let Some((scenario_index, scenario)) = found else {
        shared.record(RecordedRequest {
            path: path.to_owned(),
            body,
            scenario: String::new(),
            turn: inbound.turn,
            attempt: 0,
            credential,
            usage: None,
        });
        let names: Vec<&str> = shared
            .script
            .scenarios
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let message = format!(
            "mock-model: no scenario matches this request (scenarios: {})",
            names.join(", ")
        );
        tracing::warn!(path, %message, "mock-model request unmatched");
        return error_response(dialect, 400, None, &message, None);
    };

    let turn = inbound.turn;
    let attempt_index = {
        let mut counters = lock(&shared.counters);
        let counter = counters.entry((scenario_index, turn)).or_insert(0);
        let k = *counter;
        *counter += 1;
        k
    };
    let attempt = scenario.turns.get(turn).and_then(|t| {
        t.attempts
            .get(attempt_index.min(t.attempts.len().saturating_sub(1)))
    });
    let input_estimate = estimate_tokens(raw.len());
    tracing::info!(
        path,
        scenario = scenario.name.as_str(),
        turn,
        attempt = attempt_index,
        finished = attempt.is_none(),
        "mock-model request"
    );
    let cached = shared.cache.serve(dialect, &body);
    let index = shared.record(RecordedRequest {
        path: path.to_owned(),
        body,
        scenario: scenario.name.clone(),
        turn,
        attempt: attempt_index,
        credential,
        usage: None,
    });

    let finished;
    let reply = match attempt {
        Some(Attempt::Error(ErrorReply {
            status,
            message,
            retry_after,
            kind,
        })) => {
            return error_response(dialect, *status, kind.as_deref(), message, *retry_after);
        }
        Some(Attempt::Reply(reply)) => reply,
        None => {
            finished = finished_reply();
            &finished
        }
    };

    let tool_prefix = match dialect {
        Dialect::OpenAi => "call_mock_",
        Dialect::Anthropic => "toolu_mock_",
    };
    let mut plan = Plan::new(reply, input_estimate, || {
        format!("{tool_prefix}{}", shared.id())
    });
    plan.apply_cache(
        reply.usage.as_ref(),
        input_estimate,
        cached.read,
        cached.write,
    );
    if let Some(recorded) = lock(&shared.requests).get_mut(index) {
        recorded.usage = Some(ReportedUsage {
            input_tokens: plan.input_tokens,
            output_tokens: plan.output_tokens,
            cache_read_tokens: plan.cache_read_tokens,
            cache_write_tokens: plan.cache_write_tokens,
        });
    }
    let meta = Meta {
        id: match dialect {
            Dialect::OpenAi => format!("chatcmpl-mock-{}", shared.id()),
            Dialect::Anthropic => format!("msg_mock_{}", shared.id()),
        },
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        model: inbound.model.clone(),
        include_usage: inbound.include_usage,
    };

    if inbound.stream {
        let frames = match dialect {
            Dialect::OpenAi => openai::stream(&meta, &plan),
            Dialect::Anthropic => anthropic::stream(&meta, &plan),
        };
        let delay = Duration::from_millis(shared.script.chunk_delay_ms);
        let stream = frame_stream(frames, delay, app.stop.clone());
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Body::from_stream(stream))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }

    let mut stop = app.stop.clone();
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
        Dialect::OpenAi => openai::completion(&meta, &plan),
        Dialect::Anthropic => anthropic::message(&meta, &plan),
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
