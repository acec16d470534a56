//! The composition root: the typed configuration ([`config`]) and the wiring of the store,
//! the sandbox controller, the engines, the runner and the server's state ([`startup`]).
//! The binary and the test kit start the service through it; the server crate serves what
//! it is given.

pub mod config;
pub mod startup;

pub use config::Config;
