//! `[http]`: the limits of the HTTP edge, each overridable by a `DRAFTSMITH_HTTP_…` variable.

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// Timeouts, the connection cap and how to tell an HTTPS client (docs/decisions.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A connection waiting for a request head (a new one, or one kept alive after a
    /// response) is closed when the whole head has not arrived within this many seconds.
    pub header_timeout_seconds: f64,
    /// An exchange in which no byte moves either way for this long is closed (a stalled
    /// body, a client that stops reading). Event streams send a comment every 15 s.
    pub idle_timeout_seconds: f64,
    /// A request body must arrive whole within this many seconds of its head, else 408.
    pub body_timeout_seconds: f64,
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
            header_timeout_seconds: 15.0,
            idle_timeout_seconds: 60.0,
            body_timeout_seconds: 60.0,
            max_connections: 1024,
            trust_proxy_headers: false,
            secure_cookies: false,
        }
    }
}

impl HttpConfig {
    /// The header timeout as a duration (at least 50 ms).
    pub fn header_timeout(&self) -> Duration {
        seconds(self.header_timeout_seconds)
    }

    /// The idle timeout as a duration (at least 50 ms).
    pub fn idle_timeout(&self) -> Duration {
        seconds(self.idle_timeout_seconds)
    }

    /// The body timeout as a duration (at least 50 ms).
    pub fn body_timeout(&self) -> Duration {
        seconds(self.body_timeout_seconds)
    }

    /// Applies the `DRAFTSMITH_HTTP_…` overrides.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let secs = |var: &'static str, v: String| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or(ConfigError::Env {
                    var,
                    message: format!("expected seconds, got {v:?}"),
                })
        };
        let flag = |v: String| matches!(v.trim(), "1" | "true" | "yes");
        if let Some(v) = env("DRAFTSMITH_HTTP_HEADER_TIMEOUT_SECONDS") {
            self.header_timeout_seconds = secs("DRAFTSMITH_HTTP_HEADER_TIMEOUT_SECONDS", v)?;
        }
        if let Some(v) = env("DRAFTSMITH_HTTP_IDLE_TIMEOUT_SECONDS") {
            self.idle_timeout_seconds = secs("DRAFTSMITH_HTTP_IDLE_TIMEOUT_SECONDS", v)?;
        }
        if let Some(v) = env("DRAFTSMITH_HTTP_BODY_TIMEOUT_SECONDS") {
            self.body_timeout_seconds = secs("DRAFTSMITH_HTTP_BODY_TIMEOUT_SECONDS", v)?;
        }
        if let Some(v) = env("DRAFTSMITH_HTTP_MAX_CONNECTIONS") {
            self.max_connections =
                v.trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(ConfigError::Env {
                        var: "DRAFTSMITH_HTTP_MAX_CONNECTIONS",
                        message: format!("expected a positive number, got {v:?}"),
                    })?;
        }
        if let Some(v) = env("DRAFTSMITH_TRUST_PROXY_HEADERS") {
            self.trust_proxy_headers = flag(v);
        }
        if let Some(v) = env("DRAFTSMITH_SECURE_COOKIES") {
            self.secure_cookies = flag(v);
        }
        Ok(())
    }
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() { s.max(0.05) } else { 0.05 })
}
