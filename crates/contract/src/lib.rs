//! The selected-agent integration contract (SPEC §2 "Builder"): an app's runtime agent with
//! its tools resolved, their UI hints normalised into one shape, and everything that could
//! not be resolved reported as diagnostics rather than failures. Pure functions, no I/O.

pub mod hints;
pub mod resolve;
pub mod summary;
pub mod types;

pub use resolve::resolve;
pub use summary::describe;
pub use types::*;
