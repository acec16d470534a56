//! The vocabulary every draftsmith crate shares: identifiers, domain records, the wire types
//! of the HTTP API and the stable error codes. Nothing here does I/O.

pub mod api;
pub mod app_event;
pub mod blob;
pub mod checkpoint;
pub mod draft;
pub mod error;
pub mod event;
pub mod ids;
pub mod model;
pub mod path;
pub mod publish;
pub mod run;
pub mod time;

pub use app_event::{AppEvent, AppEventBody};
pub use blob::BlobHash;
pub use draft::FileChange;
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use event::{Diagnostic, EventBody, EventError, RunEvent, Stage};
pub use ids::{AppId, ChatSessionId, InstanceId, QueueItemId, Role, RunId, UploadId, UserId};
pub use model::{CacheMode, ModelFacts, ModelPrices, Usage, UsageTotals};
pub use path::{DraftPath, PathError};
pub use run::{EngineKind, RunStatus};
pub use time::Timestamp;
