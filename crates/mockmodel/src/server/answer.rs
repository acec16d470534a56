//! One model request from body to response: check the tool-result invariant, choose the
//! scenario and the attempt, record the request, plan the reply and play it.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::Response;
use serde_json::Value;

use super::playback::{self, error_response};
use super::state::{App, Shared};
use crate::plan::{Meta, Plan, estimate_tokens};
use crate::recorded::RecordedRequest;
use crate::request::{Dialect, Inbound};
use crate::script::{Attempt, ErrorReply, Finish, Reply, Scenario, Step};

/// What a model request says besides its body.
pub(super) struct Request<'a> {
    pub(super) dialect: Dialect,
    pub(super) path: &'a str,
    pub(super) credential: Option<String>,
}

impl Request<'_> {
    /// The record of this request when no scenario answers it.
    fn unanswered(&self, body: Value, turn: usize) -> RecordedRequest {
        RecordedRequest {
            path: self.path.to_owned(),
            body,
            scenario: String::new(),
            turn,
            attempt: 0,
            credential: self.credential.clone(),
            usage: None,
        }
    }
}

/// The scenario chosen for a request, with its index in the script.
struct Chosen<'s> {
    index: usize,
    scenario: &'s Scenario,
}

/// One model request: check, choose, record, answer.
pub(super) async fn handle(app: &App, request: Request<'_>, raw: &[u8]) -> Response {
    let shared = &app.shared;
    let body: Value = match serde_json::from_slice(raw) {
        Ok(body) => body,
        Err(e) => {
            let text = Value::String(String::from_utf8_lossy(raw).into_owned());
            shared.record(request.unanswered(text, 0));
            let message = format!("mock-model: request body is not JSON: {e}");
            return error_response(request.dialect, 400, None, &message, None);
        }
    };
    let mut inbound = Inbound::read(request.dialect, &body);
    if let Some(window) = shared.script.context_window
        && let Some(overflow) = crate::window::overflow(window, raw.len(), &body)
    {
        inbound.violations.push(overflow);
    }
    if !inbound.violations.is_empty() {
        return refuse_violation(shared, &request, body, &inbound);
    }
    match choose_scenario(shared, &inbound) {
        Some(chosen) => answer(app, request, body, &inbound, raw.len(), chosen).await,
        None => refuse_unmatched(shared, &request, body, inbound.turn),
    }
}

/// The first scenario whose `match` fits the request.
fn choose_scenario<'s>(shared: &'s Shared, inbound: &Inbound) -> Option<Chosen<'s>> {
    let found = shared.script.scenarios.iter().enumerate().find(|(_, s)| {
        s.matcher
            .as_ref()
            .is_none_or(|m| inbound.match_text.contains(&m.contains))
    });
    found.map(|(index, scenario)| Chosen { index, scenario })
}

/// Refuses a request whose tool results answer no earlier tool call, or that does not fit
/// the context window, and counts it.
fn refuse_violation(
    shared: &Shared,
    request: &Request<'_>,
    body: Value,
    inbound: &Inbound,
) -> Response {
    let path = request.path;
    let message = format!(
        "mock-model invariant violated: {}",
        inbound.violations.join("; ")
    );
    tracing::error!(path, %message, "mock-model request breaks the tool-result invariant");
    shared.violation(message.clone());
    shared.record(request.unanswered(body, inbound.turn));
    let kind = Some("invalid_request_error");
    error_response(request.dialect, 400, kind, &message, None)
}

/// Refuses a request no scenario matches, naming the scenarios there are.
fn refuse_unmatched(shared: &Shared, request: &Request<'_>, body: Value, turn: usize) -> Response {
    let path = request.path;
    shared.record(request.unanswered(body, turn));
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
    error_response(request.dialect, 400, None, &message, None)
}

/// Plays the chosen scenario's attempt for the request's turn.
async fn answer(
    app: &App,
    request: Request<'_>,
    body: Value,
    inbound: &Inbound,
    raw_len: usize,
    chosen: Chosen<'_>,
) -> Response {
    let shared = &app.shared;
    let Request {
        dialect,
        path,
        credential,
    } = request;
    let Chosen { index, scenario } = chosen;
    let turn = match scenario.sequential {
        true => shared.next_in_sequence(index),
        false => inbound.turn,
    };
    let attempt_index = shared.next_attempt(index, turn);
    let attempt = scenario.turns.get(turn).and_then(|t| {
        t.attempts
            .get(attempt_index.min(t.attempts.len().saturating_sub(1)))
    });
    let input_estimate = estimate_tokens(raw_len);
    tracing::info!(
        path,
        scenario = scenario.name.as_str(),
        turn,
        attempt = attempt_index,
        finished = attempt.is_none(),
        "mock-model request"
    );
    let cached = shared.cache.serve(dialect, &body);
    let recorded = shared.record(RecordedRequest {
        path: path.to_owned(),
        body,
        scenario: scenario.name.clone(),
        turn,
        attempt: attempt_index,
        credential,
        usage: None,
    });
    let reply = match attempt {
        Some(Attempt::Error(error)) => return scripted_error(dialect, error),
        Some(Attempt::Reply(reply)) => Cow::Borrowed(reply),
        None => Cow::Owned(finished_reply()),
    };
    let mut plan = Plan::new(&reply, input_estimate, || {
        format!("{}{}", tool_id_prefix(dialect), shared.id())
    });
    let usage = reply.usage.as_ref();
    plan.apply_cache(usage, input_estimate, cached.read, cached.write);
    shared.report_usage(recorded, &plan);
    let meta = meta(shared, dialect, inbound);
    if inbound.stream {
        let delay = Duration::from_millis(shared.script.chunk_delay_ms);
        return playback::streamed(dialect, &meta, &plan, delay, app.stop.clone());
    }
    playback::whole(dialect, &meta, &plan, app.stop.clone()).await
}

/// A scripted HTTP error, in the provider's shape.
fn scripted_error(dialect: Dialect, error: &ErrorReply) -> Response {
    let ErrorReply {
        status,
        message,
        retry_after,
        kind,
    } = error;
    error_response(dialect, *status, kind.as_deref(), message, *retry_after)
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

/// How generated tool call ids start in each dialect.
fn tool_id_prefix(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::OpenAi => "call_mock_",
        Dialect::Anthropic => "toolu_mock_",
    }
}

/// The reply's id, creation time and model, as every wire shape reports them.
fn meta(shared: &Shared, dialect: Dialect, inbound: &Inbound) -> Meta {
    Meta {
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
    }
}
