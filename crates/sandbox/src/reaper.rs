//! The periodic reaper: expired sandboxes are also reaped when new ones are created, but a
//! quiet service still needs this to end idle ones.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::controller::SandboxController;

/// Calls `reap_expired` every `interval` until `stop` is cancelled; the caller owns the task.
pub fn spawn_reaper(
    controller: Arc<dyn SandboxController>,
    interval: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(e) = controller.reap_expired().await {
                        tracing::warn!(error = %e, "reaping expired sandboxes failed");
                    }
                }
            }
        }
    })
}
