//! Running remote commands by id, so a client can cancel one explicitly; a cancel that
//! arrives before its command is remembered briefly, and a dropped connection cancels too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// How long a cancel for a command not (yet) running is remembered.
const EARLY_CANCEL_TTL: Duration = Duration::from_secs(120);

/// The cancellation tokens of running (or cancelled-in-advance) commands.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExecRegistry(Arc<Mutex<HashMap<String, (CancellationToken, Instant)>>>);

impl ExecRegistry {
    /// The token for `exec_id`, already cancelled if a cancel came first; the guard cancels
    /// it and forgets the id when the request ends or its connection drops.
    pub(crate) fn start(&self, exec_id: &str) -> (CancellationToken, ExecGuard) {
        let token = self
            .0
            .lock()
            .map(|mut map| {
                map.entry(exec_id.to_owned())
                    .or_insert_with(|| (CancellationToken::new(), Instant::now()))
                    .0
                    .clone()
            })
            .unwrap_or_default();
        let guard = ExecGuard {
            registry: self.clone(),
            exec_id: exec_id.to_owned(),
            token: token.clone(),
        };
        (token, guard)
    }

    /// Cancels `exec_id`, or remembers the cancel for when it starts.
    pub(crate) fn cancel(&self, exec_id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.retain(|_, (token, at)| !token.is_cancelled() || at.elapsed() < EARLY_CANCEL_TTL);
            map.entry(exec_id.to_owned())
                .or_insert_with(|| (CancellationToken::new(), Instant::now()))
                .0
                .cancel();
        }
    }
}

/// Ends one command's registration.
pub(crate) struct ExecGuard {
    registry: ExecRegistry,
    exec_id: String,
    token: CancellationToken,
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        self.token.cancel();
        if let Ok(mut map) = self.registry.0.lock() {
            map.remove(&self.exec_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_early_cancel_is_not_lost() {
        let registry = ExecRegistry::default();
        registry.cancel("a");
        let (token, guard) = registry.start("a");
        assert!(token.is_cancelled());
        drop(guard);
        let (fresh, _guard) = registry.start("a");
        assert!(!fresh.is_cancelled());
    }

    #[test]
    fn dropping_the_request_cancels() {
        let registry = ExecRegistry::default();
        let (token, guard) = registry.start("b");
        drop(guard);
        assert!(token.is_cancelled());
    }
}
