//! `GET /admin/apps/{app_id}/coding-agent/events`: the app's own event log over SSE (runs
//! accepted and ended, queue changes, draft revisions), replayed after `Last-Event-ID` (or
//! `?after=`) and then followed. The log is written in the transactions that make the
//! changes, by any instance, so a follower re-reads it after the last `seq` it sent: on
//! PostgreSQL every [`POLL`]; on SQLite, whose every write this process makes, after the
//! next write (no sooner than [`POLL`] after its last read), so an idle app's followers
//! read nothing. The stream never ends by itself.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use draftsmith_core::{AppEvent, AppId, ErrorBody};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppIdPath, Query};
use crate::routes::apps::visible_app;
use crate::{AppState, Settings};

/// Events read from the log per query.
const PAGE: i64 = 500;
/// How often a follower re-reads the log at most (on PostgreSQL: how often it does).
const POLL: Duration = Duration::from_millis(250);

pub fn router(_: &Settings) -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(app_events))
}

/// Where to resume.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// Resume after this `seq` (like `Last-Event-ID`).
    after: Option<i64>,
}

/// Follow an app's events (runs, queue, draft) over Server-Sent Events.
#[utoipa::path(get, path = "/admin/apps/{app_id}/coding-agent/events",
    params(("app_id" = String, Path), EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "the last seq received", pattern = "^[0-9]{1,18}$")),
    responses((status = 200, content_type = "text/event-stream"), (status = 404, body = ErrorBody)))]
async fn app_events(
    State(state): State<AppState>,
    caller: Caller,
    AppIdPath(app_id): AppIdPath,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    visible_app(&state, &caller, app_id).await?;
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
    let (tx, rx) = mpsc::channel::<Event>(64);
    let keep_alive = KeepAlive::new().interval(state.settings.http.sse_keepalive());
    tokio::spawn(follow(state, app_id, after, tx));
    Ok(Sse::new(futures::StreamExt::map(
        ReceiverStream::new(rx),
        Ok::<Event, Infallible>,
    ))
    .keep_alive(keep_alive))
}

/// Sends the app's events after `last` until the client leaves.
async fn follow(state: AppState, app: AppId, mut last: i64, tx: mpsc::Sender<Event>) {
    let mut writes = state.store.writes();
    loop {
        let read = tokio::time::Instant::now();
        // A write committed from here on is read next time.
        if let Some(writes) = writes.as_mut() {
            writes.borrow_and_update();
        }
        match state.store.app_events_after(app, last, PAGE).await {
            Ok(page) => {
                let full = page.len() as i64 == PAGE;
                for event in &page {
                    if send(&tx, event).await.is_err() {
                        return;
                    }
                    last = event.seq;
                }
                if full {
                    continue;
                }
            }
            Err(err) => tracing::warn!(app = %app, error = %err, "could not read the app's log"),
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = next_write(&mut writes, read + POLL) => {}
        }
    }
}

/// Returns at `not_before`, or later once a write was committed after the last look when
/// the store counts its writes ([`draftsmith_store::Store::writes`]).
async fn next_write(writes: &mut Option<watch::Receiver<u64>>, not_before: tokio::time::Instant) {
    tokio::time::sleep_until(not_before).await;
    if let Some(counted) = writes
        && counted.changed().await.is_err()
    {
        // The store closed: nothing more will be written.
        std::future::pending::<()>().await;
    }
}

async fn send(tx: &mpsc::Sender<Event>, event: &AppEvent) -> Result<(), ()> {
    let data = serde_json::to_string(event).unwrap_or_default();
    let sse = Event::default()
        .id(event.seq.to_string())
        .event(event.body.event_type())
        .data(data);
    tx.send(sse).await.map_err(|_| ())
}
