//! Agent engines and the model providers they talk to: the [`Engine`] seam, the native
//! loop, the model registry, and the history formatter every engine shares.

pub mod context;
pub mod engine;
pub mod facts;
pub mod history;
pub mod model;
pub mod native;
pub mod providers;
pub mod registry;
pub mod steering;
pub mod summary;

pub use draftsmith_contract::AgentContract;
pub use engine::{
    Attachment, Engine, EventSink, Finished, Job, LocalTools, ModelCall, Outcome, SinkClosed,
    Spending, ToolHost,
};
pub use facts::{ModelSettings, PriceSettings};
pub use native::NativeEngine;
pub use registry::{ModelRegistry, ProviderKind, ProviderSpec, ResolvedModel, Unavailable};
pub use steering::{Steering, SteeringSender};
