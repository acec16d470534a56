//! The tools themselves, one module each; they receive already-validated input.

pub(crate) mod contract;
pub(crate) mod files;
pub(crate) mod find;
pub(crate) mod list;
pub(crate) mod read;
pub(crate) mod run_command;
pub(crate) mod search;
mod walk;

use serde_json::Value;

/// A tool's successful result and the workspace-relative paths it read or changed.
#[derive(Debug)]
pub(crate) struct Done {
    /// Fields merged into the success envelope after `"ok": true`.
    pub result: Value,
    /// Paths for the run's record.
    pub paths: Vec<String>,
}
