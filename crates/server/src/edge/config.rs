//! `[http]`: the limits of the HTTP edge.

use std::time::Duration;

use serde::Deserialize;

/// Timeouts, the connection cap and how to tell an HTTPS client (docs/decisions.md).
/// Time spans are read from the file's `…_seconds` keys (at least 50 ms each).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A connection waiting for a request head (a new one, or one kept alive after a
    /// response) is closed when the whole head has not arrived within this time.
    #[serde(rename = "header_timeout_seconds", deserialize_with = "seconds")]
    pub header_timeout: Duration,
    /// An exchange in which no byte moves either way for this long is closed (a stalled
    /// body, a client that stops reading). Event streams send a comment well within it.
    #[serde(rename = "idle_timeout_seconds", deserialize_with = "seconds")]
    pub idle_timeout: Duration,
    /// A request body must arrive whole within this time of its head, else 408.
    #[serde(rename = "body_timeout_seconds", deserialize_with = "seconds")]
    pub body_timeout: Duration,
    /// How often a quiet event stream sends a comment (at most a third of the idle
    /// timeout).
    #[serde(rename = "sse_keepalive_seconds", deserialize_with = "seconds")]
    pub sse_keepalive: Duration,
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Believe `X-Forwarded-Proto` / `Forwarded: proto=` from a reverse proxy in front.
    pub trust_proxy_headers: bool,
    /// Mark the session cookie `Secure` on every response, proxy or not.
    pub secure_cookies: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            sse_keepalive: Duration::from_secs(15),
            max_connections: 1024,
            trust_proxy_headers: false,
            secure_cookies: false,
        }
    }
}

impl HttpConfig {
    /// The header timeout (at least 50 ms).
    pub fn header_timeout(&self) -> Duration {
        self.header_timeout.max(MIN)
    }

    /// The idle timeout (at least 50 ms).
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout.max(MIN)
    }

    /// The body timeout (at least 50 ms).
    pub fn body_timeout(&self) -> Duration {
        self.body_timeout.max(MIN)
    }

    /// The keep-alive interval of event streams: as configured, and at most a third of
    /// the idle timeout so an open stream is never an idle connection.
    pub fn sse_keepalive(&self) -> Duration {
        self.sse_keepalive.max(MIN).min(self.idle_timeout() / 3)
    }
}

/// The shortest time span the edge accepts.
const MIN: Duration = Duration::from_millis(50);

/// A time span from a number of seconds (an integer or a fraction, finite and not
/// negative), for the file's `…_seconds` keys.
pub fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = f64::deserialize(d)?;
    Duration::try_from_secs_f64(value)
        .map_err(|_| serde::de::Error::custom(format!("expected seconds, got {value}")))
}
