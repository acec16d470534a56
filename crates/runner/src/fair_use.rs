//! Fair use: per user, at most N active runs across apps and M run creations a minute
//! (429 `RATE_LIMITED`); per instance, at most K sandboxes working at once (503). Both
//! answer with a `Retry-After`. Counted before the run is persisted; two creations racing
//! may both pass (the limits are fairness, not security).

use std::time::Duration;

use draftsmith_core::{Timestamp, UserId};
use draftsmith_store::{Store, StoreError};

/// How long the rate window is.
const WINDOW: Duration = Duration::from_secs(60);
/// What a client is told to wait when nothing says better (an active run's end is
/// unknown).
const DEFAULT_RETRY: u64 = 5;

/// The configured limits; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FairUse {
    /// Runs one user may have queued or running at once, across apps.
    pub user_active_runs: Option<u64>,
    /// Runs one user may create per minute.
    pub user_runs_per_minute: Option<u64>,
    /// Sandboxes this instance works in at once (one per executing run).
    pub instance_sandboxes: Option<u64>,
}

/// Why a run may not start now; retry after `retry_after` seconds.
#[derive(Debug, thiserror::Error)]
pub enum Throttled {
    /// The user has too many active runs (429).
    #[error("at most {limit} active runs per user; wait for one to end")]
    UserActiveRuns {
        /// The limit.
        limit: u64,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The user created too many runs in the last minute (429).
    #[error("at most {limit} runs per minute per user")]
    UserRate {
        /// The limit.
        limit: u64,
        /// Seconds until the oldest leaves the window.
        retry_after: u64,
    },
    /// This instance has no sandbox free (503).
    #[error("all {limit} sandboxes of this instance are busy")]
    InstanceFull {
        /// The limit.
        limit: u64,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// The store could not count.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FairUse {
    /// Refuses a new run of `user` at `now` when a limit is reached; `working` is how many
    /// runs this instance executes.
    pub async fn check(
        &self,
        store: &dyn Store,
        user: &UserId,
        now: Timestamp,
        working: usize,
    ) -> Result<(), Throttled> {
        if let Some(limit) = self.instance_sandboxes
            && working as u64 >= limit
        {
            return Err(Throttled::InstanceFull {
                limit,
                retry_after: DEFAULT_RETRY,
            });
        }
        if self.user_active_runs.is_none() && self.user_runs_per_minute.is_none() {
            return Ok(());
        }
        let window = WINDOW.as_micros() as i64;
        let since = Timestamp::from_micros(now.as_micros() - window);
        let activity = store.user_activity(user, since).await?;
        if let Some(limit) = self.user_active_runs
            && activity.active >= limit
        {
            return Err(Throttled::UserActiveRuns {
                limit,
                retry_after: DEFAULT_RETRY,
            });
        }
        if let Some(limit) = self.user_runs_per_minute
            && activity.recent >= limit
        {
            let frees_at = activity
                .oldest_recent
                .map_or(now.as_micros(), |t| t.as_micros())
                + window;
            let wait = (frees_at - now.as_micros()).max(0) as u64;
            return Err(Throttled::UserRate {
                limit,
                retry_after: wait.div_ceil(1_000_000).max(1),
            });
        }
        Ok(())
    }
}
