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
use draftsmith_store::StoreError;
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

/// What a follower reads: the run's log after a `seq`, and whether the run has ended.
trait RunLog {
    /// At most `limit` events after `last`, in order.
    async fn events_after(
        &self,
        run: RunId,
        last: i64,
        limit: i64,
    ) -> Result<Vec<RunEvent>, StoreError>;
    /// Whether the run's status is terminal.
    async fn ended(&self, run: RunId) -> Result<bool, StoreError>;
}

impl RunLog for AppState {
    async fn events_after(
        &self,
        run: RunId,
        last: i64,
        limit: i64,
    ) -> Result<Vec<RunEvent>, StoreError> {
        self.store.events_after(run, last, limit).await
    }

    async fn ended(&self, run: RunId) -> Result<bool, StoreError> {
        Ok(self.store.run(run).await?.status.is_terminal())
    }
}

/// Sends what the log holds after `last`; [`Flow::Done`] once the terminal event is sent
/// (or was sent before).
async fn catch_up(log: &impl RunLog, run: RunId, last: &mut i64, tx: &mpsc::Sender<Event>) -> Flow {
    // Whether the run was seen ended before the read now under way began.
    let mut ended = false;
    loop {
        let page = match log.events_after(run, *last, PAGE).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(run = %run, error = %err, "could not read the event log");
                return Flow::More;
            }
        };
        if page.is_empty() {
            if ended {
                // Read after the run was seen ended: the terminal event, committed with
                // the status, was already sent.
                return Flow::Done;
            }
            // The terminal event may have been committed between the read above and this
            // look at the status: read the log once more before calling the stream over.
            match log.ended(run).await {
                Ok(true) => {
                    ended = true;
                    continue;
                }
                _ => return Flow::More,
            }
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use draftsmith_core::{AppId, EventBody, Stage, Timestamp};

    use super::*;

    /// A run's log whose terminal event (`seq` 5, committed with the run's status) lands
    /// after the follower's read number `lands_after`.
    struct Log {
        terminal: RunEvent,
        lands_after: u32,
        reads: Mutex<u32>,
    }

    impl Log {
        fn new(run: RunId, lands_after: u32) -> Self {
            let terminal = RunEvent {
                body: EventBody::RunCompleted {
                    revision: 2,
                    summary: "Done.".into(),
                    usage: None,
                },
                run_id: run,
                app_id: AppId::new(),
                seq: 5,
                ts: Timestamp::now(),
                stage: Stage::Run,
                diagnostics: Vec::new(),
            };
            Self {
                terminal,
                lands_after,
                reads: Mutex::new(0),
            }
        }

        fn landed(&self) -> bool {
            self.reads
                .lock()
                .is_ok_and(|reads| *reads >= self.lands_after)
        }
    }

    impl RunLog for Log {
        async fn events_after(
            &self,
            _: RunId,
            last: i64,
            _: i64,
        ) -> Result<Vec<RunEvent>, StoreError> {
            let landed = self.landed();
            if let Ok(mut reads) = self.reads.lock() {
                *reads += 1;
            }
            Ok(if landed && last < self.terminal.seq {
                vec![self.terminal.clone()]
            } else {
                Vec::new()
            })
        }

        async fn ended(&self, _: RunId) -> Result<bool, StoreError> {
            Ok(self.landed())
        }
    }

    async fn caught_up(log: &Log, mut last: i64) -> (Flow, i64, usize) {
        let (tx, mut rx) = mpsc::channel(8);
        let flow = catch_up(log, log.terminal.run_id, &mut last, &tx).await;
        drop(tx);
        let mut sent = 0;
        while rx.recv().await.is_some() {
            sent += 1;
        }
        (flow, last, sent)
    }

    #[tokio::test]
    async fn a_run_that_ends_between_a_read_and_the_status_still_sends_its_terminal_event() {
        // The first read finds nothing; the run ends before its status is looked at.
        let log = Log::new(RunId::new(), 1);
        assert_eq!(caught_up(&log, 4).await, (Flow::Done, 5, 1));
    }

    #[tokio::test]
    async fn a_stream_resumed_after_the_terminal_event_ends_without_sending() {
        let log = Log::new(RunId::new(), 0);
        assert_eq!(caught_up(&log, 5).await, (Flow::Done, 5, 0));
    }

    #[tokio::test]
    async fn a_run_still_going_is_followed_on() {
        let log = Log::new(RunId::new(), u32::MAX);
        assert_eq!(caught_up(&log, 4).await, (Flow::More, 4, 0));
    }
}
