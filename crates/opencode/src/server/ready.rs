//! When a started server counts as ready: it printed its listening line and then answered
//! `/global/health`, before the deadline and without exiting.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::child::ServerProcess;
use crate::client::OpencodeClient;

/// Why a start did not become ready.
pub(super) enum NotReady {
    Exited(String),
    Timeout,
}

/// Waits for the listening line, then for `/global/health`, before `deadline`; returns the
/// base URL (`fallback_url` when the line's sender went away).
pub(super) async fn wait_ready(
    process: &ServerProcess,
    listening: oneshot::Receiver<String>,
    fallback_url: &str,
    client_for: &(dyn Fn(String) -> OpencodeClient + Sync),
    deadline: Instant,
) -> Result<String, NotReady> {
    let mut exited = process.exited();
    let deadline = tokio::time::Instant::from_std(deadline);
    let url = tokio::select! {
        url = listening => url.unwrap_or_else(|_| fallback_url.to_owned()),
        status = exited.wait_for(|s| s.is_some()) => {
            let status = status.map(|s| s.clone().unwrap_or_default()).unwrap_or_default();
            return Err(NotReady::Exited(status));
        }
        _ = tokio::time::sleep_until(deadline) => return Err(NotReady::Timeout),
    };
    let client = client_for(url.clone());
    loop {
        if let Some(status) = exited.borrow().clone() {
            return Err(NotReady::Exited(status));
        }
        if client.healthy().await {
            return Ok(url);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(NotReady::Timeout);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
