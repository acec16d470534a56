//! The store's traits, for code that calls them on a concrete store (`SqlStore`) rather than
//! on a `dyn Store`: `use draftsmith_store::prelude::*;`.

pub use crate::apps::AppStore;
pub use crate::auth::AuthStore;
pub use crate::blobs::BlobStore;
pub use crate::chat::ChatStore;
pub use crate::checkpoints::CheckpointStore;
pub use crate::queue::QueueStore;
pub use crate::releases::ReleaseStore;
pub use crate::resources::ResourceStore;
pub use crate::runs::RunStore;
pub use crate::steering::SteeringStore;
pub use crate::store::Store;
pub use crate::uploads::UploadStore;
pub use crate::usage::UsageStore;
