//! Behaviour of the toolpack through its public API: `run_tool` against real temporary
//! workspaces, the patch corpus on disk, properties, path escapes and command processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod contract_tools;
mod fs_tools;
mod patch_corpus;
mod patch_props;
mod path_escape;
mod run_command;
mod specs;
mod validation;
