//! A run's phase timings (SPEC §4 `timing_metrics_ms`), typed until they are stored.

use serde::Serialize;
use serde_json::{Map, Value};

/// Milliseconds per phase; a phase the run never reached is absent.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct RunTimings {
    /// Validating and persisting the run.
    pub create_run: u64,
    /// The API's own handling of the create request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_run_api: Option<u64>,
    /// Creating or reusing and refreshing the sandbox, and writing the prompt's attachments
    /// that go into it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_start: Option<u64>,
    /// The engine getting ready, summed over the run's turns; only the OpenCode engine has
    /// anything to start, hence the wire name.
    #[serde(rename = "opencode_start", skip_serializing_if = "Option::is_none")]
    pub engine_start: Option<u64>,
    /// From the run's start to its first answer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token: Option<u64>,
    /// The whole run, up to its ending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

impl RunTimings {
    /// Timings of a run whose creation took `create_run` ms.
    pub(crate) fn new(create_run: u64) -> Self {
        Self {
            create_run,
            ..Self::default()
        }
    }

    /// Adds one engine turn's start-up time, when the engine reported one.
    pub(crate) fn add_engine_start(&mut self, ms: Option<u64>) {
        if let Some(ms) = ms {
            self.engine_start = Some(self.engine_start.unwrap_or(0) + ms);
        }
    }

    /// The stored and wire form: an object keyed by phase.
    pub(crate) fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_phases_are_left_out_and_engine_start_adds_up() {
        let mut timings = RunTimings::new(3);
        assert_eq!(
            Value::Object(timings.to_map()).to_string(),
            r#"{"create_run":3}"#
        );
        timings.add_engine_start(None);
        timings.add_engine_start(Some(40));
        timings.add_engine_start(Some(2));
        timings.total = Some(50);
        assert_eq!(
            Value::Object(timings.to_map()).to_string(),
            r#"{"create_run":3,"opencode_start":42,"total":50}"#
        );
    }
}
