//! Following `GET /global/event` for one session: a task reads the SSE stream, keeps the
//! events of that session (and permission requests of its subagents), and reports when the
//! stream ends, breaks or stalls so the run can fall back to polling.

use std::collections::HashSet;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::client::{ClientError, OpencodeClient};
use crate::wire::{Event, parse_event};

/// OpenCode sends a heartbeat every 10 s; a stream silent for this long is dead.
const STALL: Duration = Duration::from_secs(30);
/// How long to wait for `server.connected` before calling the subscription failed.
const CONNECT: Duration = Duration::from_secs(10);

/// What the stream delivers.
#[derive(Debug)]
pub enum StreamItem {
    /// An event of the followed session.
    Event(Box<Event>),
    /// The stream is over (why); nothing follows.
    Ended(String),
}

/// A live subscription; dropping it closes the connection.
#[derive(Debug)]
pub struct SessionEvents {
    rx: mpsc::UnboundedReceiver<StreamItem>,
    task: JoinHandle<()>,
}

impl Drop for SessionEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SessionEvents {
    /// Subscribes and waits until the server confirmed the stream, so nothing sent after
    /// this returns can be missed. `drop_after` cuts the connection after that many session
    /// events (a fault-injection knob for tests).
    pub async fn subscribe(
        client: &OpencodeClient,
        session: String,
        drop_after: Option<usize>,
    ) -> Result<Self, ClientError> {
        let response = client.events().await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (connected_tx, connected_rx) = oneshot::channel();
        let task = tokio::spawn(follow(response, session, drop_after, tx, connected_tx));
        let events = Self { rx, task };
        match tokio::time::timeout(CONNECT, connected_rx).await {
            Ok(Ok(())) => Ok(events),
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

async fn follow(
    response: reqwest::Response,
    session: String,
    drop_after: Option<usize>,
    tx: mpsc::UnboundedSender<StreamItem>,
    connected: oneshot::Sender<()>,
) {
    let mut connected = Some(connected);
    let mut children: HashSet<String> = HashSet::new();
    let mut forwarded = 0usize;
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
        let keep = match &event {
            Event::Connected => {
                if let Some(tx) = connected.take() {
                    let _ = tx.send(());
                }
                false
            }
            Event::SessionCreated(created) => {
                if created.parent_id.as_deref() == Some(session.as_str()) {
                    children.insert(created.id.clone());
                }
                false
            }
            // A subagent's permission request would block this run too.
            Event::PermissionAsked(request) => {
                request.session_id == session || children.contains(&request.session_id)
            }
            _ => owner.as_deref() == Some(session.as_str()),
        };
        if !keep {
            continue;
        }
        if tx.send(StreamItem::Event(Box::new(event))).is_err() {
            return;
        }
        forwarded += 1;
        if drop_after.is_some_and(|limit| forwarded >= limit) {
            break format!("dropped after {forwarded} events (fault injection)");
        }
    };
    let _ = tx.send(StreamItem::Ended(reason));
}
