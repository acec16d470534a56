//! The run rules every statement shares, written once: which statuses are active (core's
//! [`RunStatus::ACTIVE`]) and which status an event moves its run to, from which.

use draftsmith_core::{EventBody, RunStatus};

/// `'a', 'b'` for a SQL `IN (…)`; the values are core's fixed status names.
pub(crate) fn sql_list(statuses: &[RunStatus]) -> String {
    let quoted: Vec<String> = statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    quoted.join(", ")
}

/// The active statuses for a SQL `IN (…)`.
pub(crate) fn active_sql() -> String {
    sql_list(&RunStatus::ACTIVE)
}

/// The active statuses as a JSON array of names, for a stored function's argument.
pub(crate) fn active_json() -> String {
    let names: Vec<&str> = RunStatus::ACTIVE.iter().map(|s| s.as_str()).collect();
    serde_json::Value::from(names).to_string()
}

/// The status appending `body` moves its run to: `running` for `run.started`, the terminal
/// status for a terminal event, none for the others.
pub(crate) fn status_after(body: &EventBody) -> Option<RunStatus> {
    match body {
        EventBody::RunStarted { .. } => Some(RunStatus::Running),
        other => other.terminal_status(),
    }
}

/// The statuses a run must be in to accept `body`: the predecessors of the status it moves
/// to, or any active status for an event that changes none.
pub(crate) fn accepted_from(body: &EventBody) -> Vec<RunStatus> {
    match status_after(body) {
        Some(next) => RunStatus::predecessors(next),
        None => RunStatus::ACTIVE.to_vec(),
    }
}
