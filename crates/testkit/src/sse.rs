//! Reading a run's event stream the way a browser does: SSE with `Last-Event-ID`.

use std::pin::Pin;
use std::time::Duration;

use draftsmith_core::{AppEvent, AppId, RunEvent};
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};

use crate::ApiClient;

/// One SSE message: its `id`, its `event` name and the decoded envelope.
type Item = Option<(String, String, RunEvent)>;

/// A live event stream of one run.
pub struct EventReader {
    inner: Pin<Box<dyn Stream<Item = Item> + Send>>,
}

impl EventReader {
    /// Opens `stream_url` resuming after `last_event_id` (sent as the header).
    pub async fn open(client: &ApiClient, stream_url: &str, last_event_id: Option<i64>) -> Self {
        let mut request = client.request(reqwest::Method::GET, stream_url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {stream_url}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let inner = response.bytes_stream().eventsource().map(|item| {
            let item = item.ok()?;
            let event: RunEvent = serde_json::from_str(&item.data)
                .unwrap_or_else(|e| panic!("bad event data {}: {e}", item.data));
            Some((item.id, item.event, event))
        });
        Self {
            inner: Box::pin(inner),
        }
    }

    /// The next event, checking that its SSE `id` and `event` match the envelope; `None`
    /// when the server closed the stream.
    pub async fn next(&mut self) -> Option<RunEvent> {
        let item = tokio::time::timeout(Duration::from_secs(60), self.inner.next())
            .await
            .expect("no event within 60 s")?;
        let (id, name, event) = item.expect("a broken SSE item");
        assert_eq!(id, event.seq.to_string());
        assert_eq!(name, event.body.event_type());
        Some(event)
    }

    /// Every remaining event until the server closes the stream.
    pub async fn rest(mut self) -> Vec<RunEvent> {
        let mut out = Vec::new();
        while let Some(event) = self.next().await {
            out.push(event);
        }
        out
    }
}

/// All events of a run after `after`, following it until its terminal event.
pub async fn collect(client: &ApiClient, stream_url: &str, after: Option<i64>) -> Vec<RunEvent> {
    EventReader::open(client, stream_url, after)
        .await
        .rest()
        .await
}

/// Asserts the SPEC's stream invariants: `seq` 1, 2, 3… from `first` without gaps, exactly
/// one terminal event, and it comes last.
pub fn assert_well_formed(events: &[RunEvent], first: i64) {
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event.seq,
            first + i as i64,
            "seq gap or duplicate at {i}: {events:#?}"
        );
    }
    let terminals = events
        .iter()
        .filter(|e| e.body.terminal_status().is_some())
        .count();
    assert_eq!(terminals, 1, "exactly one terminal event");
    assert!(
        events
            .last()
            .is_some_and(|e| e.body.terminal_status().is_some()),
        "terminal comes last"
    );
}

/// One SSE message of an app stream: its `id`, its `event` name and the decoded envelope.
type AppItem = Option<(String, String, AppEvent)>;

/// A live event stream of one app (`…/coding-agent/events`), which never ends by itself.
pub struct AppEventReader {
    inner: Pin<Box<dyn Stream<Item = AppItem> + Send>>,
}

impl AppEventReader {
    /// Opens the app's stream resuming after `last_event_id` (sent as the header).
    pub async fn open(client: &ApiClient, app: AppId, last_event_id: Option<i64>) -> Self {
        let url = format!("/admin/apps/{app}/coding-agent/events");
        let mut request = client.request(reqwest::Method::GET, &url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {url}");
        let inner = response.bytes_stream().eventsource().map(|item| {
            let item = item.ok()?;
            let event: AppEvent = serde_json::from_str(&item.data)
                .unwrap_or_else(|e| panic!("bad app event data {}: {e}", item.data));
            Some((item.id, item.event, event))
        });
        Self {
            inner: Box::pin(inner),
        }
    }

    /// The next event, checking that its SSE `id` and `event` match the envelope.
    pub async fn next(&mut self) -> AppEvent {
        let item = tokio::time::timeout(Duration::from_secs(60), self.inner.next())
            .await
            .expect("no app event within 60 s")
            .expect("the app stream closed");
        let (id, name, event) = item.expect("a broken SSE item");
        assert_eq!(id, event.seq.to_string());
        assert_eq!(name, event.body.event_type());
        event
    }

    /// Events until (and with) the first one `last` accepts.
    pub async fn until(&mut self, last: impl Fn(&AppEvent) -> bool) -> Vec<AppEvent> {
        let mut out = Vec::new();
        loop {
            let event = self.next().await;
            let done = last(&event);
            out.push(event);
            if done {
                return out;
            }
        }
    }
}
