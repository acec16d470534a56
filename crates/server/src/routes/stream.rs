//! `GET runs/{run_id}/stream`: SSE that replays the persisted log after `Last-Event-ID`
//! (or `?after=`) and then follows live. It subscribes before it reads the log and drops
//! anything already sent, so the seam has no gap and no duplicate; it ends after the
//! terminal event. A client that hangs up ends only its own stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use draftsmith_core::{ErrorBody, RunEvent, RunId};
use draftsmith_runner::BusMessage;
use futures::Stream;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::routes::runs::RunRoute;
use crate::{AppState, Settings};

/// Events read from the log per query.
const PAGE: i64 = 500;
/// How often a follower re-reads the log even without a wake-up.
const SAFETY_POLL: Duration = Duration::from_millis(1_000);

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream_run))
}

/// Where to resume.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    /// Resume after this `seq` (like `Last-Event-ID`).
    after: Option<i64>,
}

/// Follow a run's events over Server-Sent Events.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/runs/{run_id}/stream",
    params(("app_id" = String, Path), ("run_id" = String, Path), StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "the last seq received", pattern = "^[0-9]{1,18}$")),
    responses((status = 200, content_type = "text/event-stream"), (status = 404, body = ErrorBody)))]
async fn stream_run(
    State(state): State<AppState>,
    route: RunRoute,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let header = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| ApiError::validation("Last-Event-ID", "expected an event seq"))
        })
        .transpose()?;
    let after = header.or(query.after).unwrap_or(0).max(0);
    let run = route.run.run_id;
    // Subscribe first, then read the log: nothing published in between is missed.
    let live = state.runner.bus().subscribe(run);
    let (tx, rx) = mpsc::channel::<Event>(64);
    let keep_alive = KeepAlive::new().interval(state.settings.http.sse_keepalive());
    let follower = state.runner.metrics().follower();
    tokio::spawn(async move {
        follow(state, run, after, live, tx).await;
        drop(follower);
    });
    Ok(Sse::new(futures::StreamExt::map(
        ReceiverStream::new(rx),
        Ok::<Event, Infallible>,
    ))
    .keep_alive(keep_alive))
}

/// Sends events after `last` until the terminal one or until the client leaves.
async fn follow(
    state: AppState,
    run: RunId,
    mut last: i64,
    mut live: broadcast::Receiver<BusMessage>,
    tx: mpsc::Sender<Event>,
) {
    if catch_up(&state, run, &mut last, &tx).await != Flow::More {
        return;
    }
    loop {
        let message = tokio::select! {
            _ = tx.closed() => return,
            m = tokio::time::timeout(SAFETY_POLL, live.recv()) => m,
        };
        let flow = match message {
            Ok(Ok(BusMessage::Event(event))) if event.seq == last + 1 => {
                send(&tx, &event, &mut last).await
            }
            Ok(Ok(BusMessage::Event(event))) if event.seq <= last => Flow::More,
            Ok(Ok(BusMessage::Hint(seq))) if seq <= last => Flow::More,
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                // The channel ends with its run; read what remains and re-subscribe if the
                // run is still going (another instance may be executing it).
                let flow = catch_up(&state, run, &mut last, &tx).await;
                live = state.runner.bus().subscribe(run);
                flow
            }
            // A gap, a hint, a lag or a quiet second: the log has the truth.
            _ => catch_up(&state, run, &mut last, &tx).await,
        };
        if flow != Flow::More {
            return;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    More,
    Done,
}

async fn catch_up(state: &AppState, run: RunId, last: &mut i64, tx: &mpsc::Sender<Event>) -> Flow {
    loop {
        let page = match state.store.events_after(run, *last, PAGE).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(run = %run, error = %err, "could not read the event log");
                return Flow::More;
            }
        };
        if page.is_empty() {
            // Nothing after `last`: if the run has ended, the client already has its
            // terminal event (it is written with the status), so the stream is over.
            return match state.store.run(run).await {
                Ok(r) if r.status.is_terminal() => Flow::Done,
                _ => Flow::More,
            };
        }
        let full = page.len() as i64 == PAGE;
        for event in &page {
            if send(tx, event, last).await == Flow::Done {
                return Flow::Done;
            }
        }
        if !full {
            return Flow::More;
        }
    }
}

async fn send(tx: &mpsc::Sender<Event>, event: &RunEvent, last: &mut i64) -> Flow {
    let data = serde_json::to_string(event).unwrap_or_default();
    let sse = Event::default()
        .id(event.seq.to_string())
        .event(event.body.event_type())
        .data(data);
    if tx.send(sse).await.is_err() {
        return Flow::Done;
    }
    *last = event.seq;
    if event.body.terminal_status().is_some() {
        Flow::Done
    } else {
        Flow::More
    }
}
