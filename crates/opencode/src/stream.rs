//! Following `GET /event`: one connection per server ([`EventHub`]), opened on the
//! first run and kept for the next ones, whose task hands each session's events (and the
//! permission requests of its subagents) to the run that follows that session
//! ([`SessionEvents`]). When the connection ends, breaks or stalls, every run following
//! it is told (it falls back to polling) and the hub connects again for later runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::{ClientError, OpencodeClient};
use crate::wire::{Event, SessionStatus, parse_event};

/// OpenCode sends a heartbeat every 10 s; a stream silent for this long is dead.
const STALL: Duration = Duration::from_secs(30);
/// How long to wait for `server.connected` before calling the subscription failed.
const CONNECT: Duration = Duration::from_secs(10);
/// The pause before connecting again after a connection failed, doubling up to the last.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_millis(1000),
    Duration::from_millis(2000),
];

/// What the stream delivers.
#[derive(Debug)]
pub enum StreamItem {
    /// An event of the followed session.
    Event(Box<Event>),
    /// The stream is over (why); nothing follows.
    Ended(String),
}

/// A server's one event connection, shared by its runs; dropping it closes the connection.
#[derive(Debug)]
pub struct EventHub {
    routes: Arc<Routes>,
    task: JoinHandle<()>,
}

impl Drop for EventHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Who follows which session, and the connection's state.
#[derive(Debug)]
struct Routes {
    table: Mutex<Table>,
    /// How many connections were confirmed so far, while the current one is up; 0 between.
    connected: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Table {
    sessions: HashMap<String, Route>,
    /// Subagent sessions and the followed session that started them.
    children: HashMap<String, String>,
    connections: u64,
}

#[derive(Debug)]
struct Route {
    tx: mpsc::UnboundedSender<StreamItem>,
    forwarded: usize,
    drop_after: Option<usize>,
    /// The last status forwarded was `busy`: OpenCode repeats it at every step, and a
    /// repeat tells the run nothing, so it is not woken for it.
    busy: bool,
}

impl Route {
    fn new(tx: mpsc::UnboundedSender<StreamItem>, drop_after: Option<usize>) -> Self {
        Self {
            tx,
            forwarded: 0,
            drop_after,
            busy: false,
        }
    }
}

impl EventHub {
    /// Starts following `client`'s server (connecting in the background).
    pub fn start(client: OpencodeClient) -> Self {
        let routes = Arc::new(Routes {
            table: Mutex::new(Table::default()),
            connected: watch::Sender::new(0),
        });
        let task = tokio::spawn(connect_and_route(client, routes.clone()));
        Self { routes, task }
    }

    /// How many times the hub connected to the server so far.
    pub fn connections(&self) -> u64 {
        self.routes.lock().connections
    }

    /// Closes the connection for good; runs still following it are told.
    pub fn close(&self) {
        self.task.abort();
        self.routes.end_all("the server is stopping");
    }
}

/// A run's view of the hub: its session's events; dropping it stops the routing.
#[derive(Debug)]
pub struct SessionEvents {
    rx: mpsc::UnboundedReceiver<StreamItem>,
    session: String,
    routes: Arc<Routes>,
}

impl Drop for SessionEvents {
    fn drop(&mut self) {
        let mut table = self.routes.lock();
        table.sessions.remove(&self.session);
        table.children.retain(|_, parent| *parent != self.session);
    }
}

impl SessionEvents {
    /// Follows `session` on `hub` and waits until the hub's connection is confirmed, so
    /// nothing the server sends after this returns can be missed. `drop_after` ends this
    /// subscription after that many of its events (a fault-injection knob for tests).
    pub async fn subscribe(
        hub: &EventHub,
        session: String,
        drop_after: Option<usize>,
    ) -> Result<Self, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        hub.routes
            .lock()
            .sessions
            .insert(session.clone(), Route::new(tx, drop_after));
        let events = Self {
            rx,
            session,
            routes: hub.routes.clone(),
        };
        let mut connected = hub.routes.connected.subscribe();
        match tokio::time::timeout(CONNECT, connected.wait_for(|up| *up > 0)).await {
            Ok(Ok(_)) => Ok(events),
            _ => Err(ClientError::Status {
                what: "events",
                status: 0,
                body: "the event stream never confirmed its connection".into(),
            }),
        }
    }

    /// The next item; `Ended` once, then `None`.
    pub async fn next(&mut self) -> Option<StreamItem> {
        self.rx.recv().await
    }
}

impl Routes {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every follower the connection is over, and forgets them.
    fn end_all(&self, reason: &str) {
        self.connected.send_replace(0);
        let mut table = self.lock();
        for (_, route) in table.sessions.drain() {
            let _ = route.tx.send(StreamItem::Ended(reason.to_owned()));
        }
        table.children.clear();
    }

    fn confirmed(&self) {
        let mut table = self.lock();
        table.connections += 1;
        self.connected.send_replace(table.connections);
    }

    /// Hands `event` (of session `owner`) to whoever follows it.
    fn route(&self, owner: Option<&str>, event: Event) {
        let mut table = self.lock();
        let target = match &event {
            Event::SessionCreated(created) => {
                if let Some(parent) = created.parent_id.as_deref()
                    && table.sessions.contains_key(parent)
                {
                    let parent = parent.to_owned();
                    table.children.insert(created.id.clone(), parent);
                }
                return;
            }
            // A subagent's permission request would block its parent's run too.
            Event::PermissionAsked(request) => {
                let asker = request.session_id.as_str();
                table
                    .children
                    .get(asker)
                    .cloned()
                    .unwrap_or(asker.to_owned())
            }
            _ => match owner {
                Some(owner) => owner.to_owned(),
                None => return,
            },
        };
        let Some(route) = table.sessions.get_mut(&target) else {
            return;
        };
        if let Event::Status(status) = &event {
            let busy = *status == SessionStatus::Busy;
            if busy && route.busy {
                return;
            }
            route.busy = busy;
        }
        let delivered = route.tx.send(StreamItem::Event(Box::new(event))).is_ok();
        route.forwarded += 1;
        let cut = route
            .drop_after
            .is_some_and(|limit| route.forwarded >= limit);
        if !delivered || cut {
            if cut {
                let reason = format!("dropped after {} events (fault injection)", route.forwarded);
                let _ = route.tx.send(StreamItem::Ended(reason));
            }
            table.sessions.remove(&target);
        }
    }
}

/// Connects, routes until the connection is lost, tells the followers, and connects again.
async fn connect_and_route(client: OpencodeClient, routes: Arc<Routes>) {
    let mut failures = 0usize;
    loop {
        let reason = match client.events().await {
            Ok(response) => {
                let (reason, confirmed) = pump(response, &routes).await;
                if confirmed {
                    failures = 0;
                }
                reason
            }
            Err(err) => format!("the event stream could not be opened: {err}"),
        };
        routes.end_all(&reason);
        tokio::time::sleep(BACKOFF[failures.min(BACKOFF.len() - 1)]).await;
        failures += 1;
    }
}

/// Routes one connection's events; answers why it ended and whether it was confirmed.
async fn pump(response: reqwest::Response, routes: &Routes) -> (String, bool) {
    let mut confirmed = false;
    let mut stream = response.bytes_stream().eventsource();
    let reason = loop {
        let next = match tokio::time::timeout(STALL, stream.next()).await {
            Ok(next) => next,
            Err(_) => break format!("no event for {} s", STALL.as_secs()),
        };
        let message = match next {
            None => break "the server closed the event stream".to_owned(),
            Some(Err(err)) => break format!("the event stream broke: {err}"),
            Some(Ok(message)) => message,
        };
        let Some((owner, event)) = parse_event(&message.data) else {
            continue;
        };
        if matches!(event, Event::Connected) {
            confirmed = true;
            routes.confirmed();
            continue;
        }
        routes.route(owner.as_deref(), event);
    };
    (reason, confirmed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn routes_following(session: &str) -> (Routes, mpsc::UnboundedReceiver<StreamItem>) {
        let routes = Routes {
            table: Mutex::new(Table::default()),
            connected: watch::Sender::new(0),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        routes
            .lock()
            .sessions
            .insert(session.into(), Route::new(tx, None));
        (routes, rx)
    }

    fn kind(item: StreamItem) -> String {
        match item {
            StreamItem::Event(event) => match *event {
                Event::Status(status) => format!("{status:?}"),
                Event::PartDelta { delta, .. } => format!("delta {delta}"),
                other => format!("{other:?}"),
            },
            StreamItem::Ended(reason) => format!("ended {reason}"),
        }
    }

    #[test]
    fn a_repeated_busy_status_wakes_no_one() {
        let (routes, mut rx) = routes_following("ses_1");
        let delta = |text: &str| Event::PartDelta {
            message_id: "m".into(),
            part_id: "p".into(),
            field: "text".into(),
            delta: text.into(),
        };
        let retry = |attempt| {
            Event::Status(SessionStatus::Retry {
                attempt,
                message: "boom".into(),
                next: None,
            })
        };
        for event in [
            Event::Status(SessionStatus::Busy),
            Event::Status(SessionStatus::Busy),
            delta("a"),
            Event::Status(SessionStatus::Busy),
            retry(1),
            retry(2),
            Event::Status(SessionStatus::Busy),
            Event::Status(SessionStatus::Idle),
            Event::Status(SessionStatus::Idle),
            Event::Status(SessionStatus::Busy),
        ] {
            routes.route(Some("ses_1"), event);
        }
        routes.route(Some("ses_2"), Event::Status(SessionStatus::Busy));
        let mut seen = Vec::new();
        while let Ok(item) = rx.try_recv() {
            seen.push(kind(item));
        }
        let retry =
            |attempt| format!("Retry {{ attempt: {attempt}, message: \"boom\", next: None }}");
        assert_eq!(
            seen,
            vec![
                "Busy".to_owned(),
                "delta a".into(),
                retry(1),
                retry(2),
                "Busy".into(),
                "Idle".into(),
                "Idle".into(),
                "Busy".into(),
            ]
        );
    }
}
