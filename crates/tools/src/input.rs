//! The input of every tool as a strict serde struct; the JSON Schema the model sees is derived
//! from the same struct, so schema and validation cannot drift apart.

use schemars::JsonSchema;
use serde::Deserialize;

/// Deepest `list` may go.
pub(crate) const MAX_LIST_DEPTH: u32 = 10;
/// Depth `list` uses when none is given.
pub(crate) const DEFAULT_LIST_DEPTH: u32 = 2;

/// Input of `list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListInput {
    /// Directory to list, relative to the workspace root. Omit it (or pass ".") for the root.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub path: Option<String>,
    /// How many levels of subdirectories to show, 1 to 10 (default 2).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    pub depth: Option<u32>,
}

/// Input of `read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadInput {
    /// File to read, relative to the workspace root.
    #[schemars(length(min = 1))]
    pub path: String,
    /// First line to return, 1-based (default 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub start_line: Option<u64>,
    /// Last line to return, inclusive (default: as far as the size bound allows).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub end_line: Option<u64>,
}

/// Input of `search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchInput {
    /// Regular expression (Rust `regex` syntax) matched against each line.
    #[schemars(length(min = 1))]
    pub pattern: String,
    /// Directory or file to search in, relative to the workspace root (default: the root).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub path: Option<String>,
    /// Only search files whose workspace-relative path matches this glob, e.g. "*.ts" or "src/**/*.tsx".
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub glob: Option<String>,
    /// Match letters regardless of case (default false).
    #[serde(default)]
    pub case_insensitive: Option<bool>,
}

/// Input of `glob`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GlobInput {
    /// Glob matched against workspace-relative file paths, e.g. "src/**/*.tsx"; "*" also crosses "/".
    #[schemars(length(min = 1))]
    pub pattern: String,
    /// Directory to look in, relative to the workspace root (default: the root).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub path: Option<String>,
}

/// Input of `write`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteInput {
    /// File to create or overwrite, relative to the workspace root; missing parent directories are created.
    #[schemars(length(min = 1))]
    pub path: String,
    /// The complete new content of the file.
    pub content: String,
}

/// Input of `apply_patch`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApplyPatchInput {
    /// The whole patch, from "*** Begin Patch" to "*** End Patch".
    #[schemars(length(min = 1))]
    pub patch: String,
}

/// Input of `delete`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteInput {
    /// File or directory to delete (a directory with everything in it), relative to the workspace root.
    #[schemars(length(min = 1))]
    pub path: String,
}

/// Input of `rename`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameInput {
    /// Existing file or directory, relative to the workspace root.
    #[schemars(length(min = 1))]
    pub from_path: String,
    /// New path, relative to the workspace root; it must not exist yet. Missing parents are created.
    #[schemars(length(min = 1))]
    pub to_path: String,
}

/// Input of `run_command`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunCommandInput {
    /// Shell command, run with `sh -c` in the workspace root.
    #[schemars(length(min = 1))]
    pub command: String,
    /// Time limit in milliseconds; it can only shorten the service's own limit.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
}

/// Input of `coding_agent_get_agent_integration_contract`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetContractInput {}

/// Input of `coding_agent_describe_selected_agent_contract`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DescribeContractInput {
    /// Also list the tool references the agent names that do not resolve.
    #[serde(default)]
    pub include_unresolved: Option<bool>,
}
