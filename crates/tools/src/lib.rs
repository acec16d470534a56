//! The native agent's toolpack (SPEC §5): one registry of tool specs, strict input validation,
//! the file-system half of the path policy, `apply_patch`, and the seam for running commands.

pub mod beneath;
mod command;
mod context;
mod dispatch;
mod error;
mod fsio;
mod input;
pub mod patch;
mod policy;
mod seed;
mod spec;
mod tools;
mod validate;

pub use command::{CommandOutput, CommandRequest, CommandRunner, LocalCommandRunner, NoCommands};
pub use context::{ToolContext, ToolLimits};
pub use dispatch::{run_tool, runs_commands};
pub use error::{ToolError, ToolOutcome};
pub use policy::{canonical_root, resolve_for_entry, resolve_for_read, resolve_for_write};
pub use seed::{ensure_service_dir, write_service_file};
pub use spec::{ToolSpec, tool_specs};
pub use tools::contract::CONTRACT_FILE;
