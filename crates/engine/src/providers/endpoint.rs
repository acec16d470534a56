//! What every provider is: an [`Endpoint`] (API root, key, client, idle timeout) and the
//! one way a turn is streamed from it, and the [`provider!`] macro that defines a provider
//! type over it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::http::{SseDecoder, send, sse_stream};
use crate::model::{ModelError, ModelStream};

/// What every provider holds: its API root, key, HTTP client and idle timeout, and the
/// one way a turn is streamed from it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    base_url: String,
    api_key: Option<String>,
    http: reqwest::Client,
    idle_timeout: Duration,
}

impl Endpoint {
    /// An endpoint at `base_url` (trailing slashes dropped).
    pub(crate) fn new(base_url: String, api_key: Option<String>, http: reqwest::Client) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            http,
            idle_timeout: super::DEFAULT_IDLE_TIMEOUT,
        }
    }

    pub(crate) fn set_idle_timeout(&mut self, idle_timeout: Duration) {
        self.idle_timeout = idle_timeout;
    }

    /// The URL of the API's `path` (`/chat/completions`, `/messages`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Posts `body` to `path` with the API's own headers and key put on by `headers`, and
    /// reads the answer's events through `decoder`.
    pub(crate) async fn stream<D: SseDecoder>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        headers: impl FnOnce(reqwest::RequestBuilder, Option<&str>) -> reqwest::RequestBuilder,
        decoder: D,
        cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        let builder = headers(
            self.http.post(self.url(path)).json(body),
            self.api_key.as_deref(),
        );
        let response = send(builder, self.idle_timeout, &cancel).await?;
        Ok(sse_stream(response, decoder, self.idle_timeout, cancel))
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

/// A provider type over an [`Endpoint`]: `provider!{ /// doc \n Name, "/path", Decoder,
/// headers }` defines `Name` with `new`, `with_idle_timeout`, `endpoint` and a
/// [`crate::model::Provider`] that posts the module's `request_body` to `path`.
macro_rules! provider {
    ($(#[$doc:meta])* $name:ident, $path:literal, $decoder:ty, $headers:path) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            endpoint: $crate::providers::endpoint::Endpoint,
        }

        impl $name {
            /// A provider for `base_url` (which already ends in `/v1`), sending `api_key`
            /// when set.
            pub fn new(
                base_url: impl Into<String>,
                api_key: Option<String>,
                http: reqwest::Client,
            ) -> Self {
                Self {
                    endpoint: $crate::providers::endpoint::Endpoint::new(base_url.into(), api_key, http),
                }
            }

            /// Sets how long to wait for the response headers and then for each next
            /// chunk (default [`crate::providers::DEFAULT_IDLE_TIMEOUT`]) before failing
            /// with [`crate::model::ModelError::Timeout`].
            #[must_use]
            pub fn with_idle_timeout(mut self, idle_timeout: std::time::Duration) -> Self {
                self.endpoint.set_idle_timeout(idle_timeout);
                self
            }

            /// The endpoint requests go to.
            pub fn endpoint(&self) -> String {
                self.endpoint.url($path)
            }
        }

        #[async_trait::async_trait]
        impl $crate::model::Provider for $name {
            async fn stream(
                &self,
                request: $crate::model::ChatRequest,
                cancel: tokio_util::sync::CancellationToken,
            ) -> Result<$crate::model::ModelStream, $crate::model::ModelError> {
                let body = request_body(&request);
                self.endpoint
                    .stream($path, &body, $headers, <$decoder>::default(), cancel)
                    .await
            }
        }
    };
}
pub(crate) use provider;
