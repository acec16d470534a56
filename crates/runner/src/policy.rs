//! Backend-authoritative engine policy (SPEC §5): which engine a run gets, and whether the
//! one it asked for is allowed.

use draftsmith_core::EngineKind;

/// What the operator allows.
#[derive(Debug, Clone)]
pub struct EnginePolicy {
    /// `APPS_CODING_AGENT_DEFAULT_ENGINE` (default `opencode`).
    pub default_engine: EngineKind,
    /// `APPS_CODING_AGENT_NATIVE_ENABLED=1`.
    pub native_enabled: bool,
    /// Why the OpenCode engine cannot run here, when it cannot.
    pub opencode_unavailable: Option<String>,
}

impl EnginePolicy {
    /// The engine for a request, or why it is refused. Deterministic: the same request and
    /// policy always give the same answer.
    pub fn choose(&self, requested: Option<EngineKind>) -> Result<EngineKind, String> {
        let engine = requested.unwrap_or(self.default_engine);
        match engine {
            EngineKind::Native if !self.native_enabled => Err(
                "the native engine is disabled (set APPS_CODING_AGENT_NATIVE_ENABLED=1 to allow it)".into(),
            ),
            EngineKind::Opencode => match &self.opencode_unavailable {
                Some(why) => Err(format!("the opencode engine is unavailable: {why}")),
                None => Ok(engine),
            },
            EngineKind::Native => Ok(engine),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn explicit_engines_follow_policy() {
        let policy = EnginePolicy {
            default_engine: EngineKind::Opencode,
            native_enabled: false,
            opencode_unavailable: None,
        };
        assert_eq!(policy.choose(None), Ok(EngineKind::Opencode));
        assert!(policy.choose(Some(EngineKind::Native)).is_err());
        let native = EnginePolicy {
            native_enabled: true,
            default_engine: EngineKind::Native,
            ..policy
        };
        assert_eq!(native.choose(None), Ok(EngineKind::Native));
        let no_opencode = EnginePolicy {
            opencode_unavailable: Some("not installed".into()),
            ..native
        };
        assert!(
            no_opencode
                .choose(Some(EngineKind::Opencode))
                .unwrap_err()
                .contains("not installed")
        );
    }
}
