//! Request and response bodies of the HTTP API. The server, the CLI and the tests all use
//! these types, so a field is named in exactly one place.

mod apps;
mod chat;
mod queue;
mod runs;
mod uploads;
mod usage;

pub use apps::*;
pub use chat::*;
pub use queue::*;
pub use runs::*;
pub use uploads::*;
pub use usage::*;

pub use crate::checkpoint::{CheckpointKind, FilesChanged};
