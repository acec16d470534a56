//! One module per model API; each converts [`crate::model`] types to its wire format.
//!
//! - [`openai`]: the OpenAI Chat Completions API (`POST {base_url}/chat/completions`), also
//!   spoken by most OpenAI-compatible servers.
//! - [`anthropic`]: the Anthropic Messages API (`POST {base_url}/messages`).
//!
//! Each API lives in its own folder: `mod.rs` holds the [`crate::model::Provider`]
//! implementation and the request conversion, `types.rs` the typed wire format and
//! `streaming.rs` the decoder from server-sent events to [`crate::model::ModelEvent`]s.
//! The HTTP plumbing they share (sending, error bodies, timeouts, cancellation, the SSE
//! driver) is in `http.rs`.
//!
//! Common behaviour:
//! - Providers never retry; [`crate::model::ModelError::is_retryable`] lets the loop decide.
//! - A non-2xx answer is [`crate::model::ModelError::Http`] with the provider's
//!   `error.message` (or the body text, bounded) and the `retry-after` header in seconds.
//! - The idle timeout (default [`DEFAULT_IDLE_TIMEOUT`]) bounds both the wait for the
//!   response headers and each wait for the next chunk; exceeding it is
//!   [`crate::model::ModelError::Timeout`].
//! - Cancelling the token while waiting for the response makes `stream` return
//!   [`crate::model::ModelError::Cancelled`]; cancelling it while the stream is being read
//!   makes the stream yield one `Err(ModelError::Cancelled)` and then end. Either way the
//!   HTTP request is dropped (and with it the connection).

use std::time::Duration;

mod endpoint;
mod http;

pub mod anthropic;
pub mod openai;

/// How long a provider waits for the response headers, and then for each next chunk,
/// unless configured otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
