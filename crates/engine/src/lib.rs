//! Agent engines and the model providers they talk to.

pub mod model;
pub mod providers;
