//! A run's lifecycle (SPEC §4) as a type: `queued → running → completed | failed |
//! cancelled | paused`, with terminal states that never change.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Accepted, not yet working.
    Queued,
    /// The engine is working.
    Running,
    /// Finished with a result.
    Completed,
    /// Ended by an error.
    Failed,
    /// Stopped by a user.
    Cancelled,
    /// Stopped by a limit; the chat can go on with a new run.
    Paused,
}

impl RunStatus {
    /// Statuses that hold an app's single active-run slot.
    pub const ACTIVE: [RunStatus; 2] = [Self::Queued, Self::Running];

    /// Every status.
    pub const ALL: [RunStatus; 6] = [
        Self::Queued,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
        Self::Paused,
    ];

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Paused => "paused",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether the run has ended for good.
    pub fn is_terminal(self) -> bool {
        !Self::ACTIVE.contains(&self)
    }

    /// The one rule for status changes: forward only, never out of a terminal state.
    pub fn can_become(self, next: RunStatus) -> bool {
        match (self, next) {
            (Self::Queued, Self::Running) => true,
            (Self::Queued | Self::Running, n) => n.is_terminal(),
            _ => false,
        }
    }

    /// The statuses from which `next` may be reached; the store uses this in its
    /// conditional updates so the database enforces the same rule.
    pub fn predecessors(next: RunStatus) -> Vec<RunStatus> {
        Self::ACTIVE
            .into_iter()
            .filter(|from| from.can_become(next))
            .collect()
    }
}

/// Which agent does the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// The real OpenCode agent driven over its HTTP API.
    Opencode,
    /// draftsmith's own Rust agent loop.
    Native,
}

impl EngineKind {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opencode => "opencode",
            Self::Native => "native",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opencode" => Some(Self::Opencode),
            "native" => Some(Self::Native),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RunStatus::{self, *};

    #[test]
    fn terminal_states_never_change() {
        let all = [Queued, Running, Completed, Failed, Cancelled, Paused];
        for from in all {
            for to in all {
                let allowed = from.can_become(to);
                if from.is_terminal() {
                    assert!(!allowed, "{from:?} -> {to:?}");
                }
                if to == Queued {
                    assert!(!allowed, "nothing goes back to queued");
                }
            }
        }
        assert!(Queued.can_become(Running));
        assert!(Running.can_become(Paused));
        assert!(!Running.can_become(Running));
        assert_eq!(RunStatus::predecessors(Running), vec![Queued]);
        assert_eq!(RunStatus::predecessors(Failed), vec![Queued, Running]);
        for s in all {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
        }
    }
}
