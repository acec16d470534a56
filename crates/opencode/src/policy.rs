//! What the capabilities endpoint says about the OpenCode engine: which tools are left to
//! OpenCode, which are switched off, which draftsmith seeds, and how permission requests
//! are answered.

use draftsmith_core::api::OpencodePolicy;

use crate::seed::PROJECT_CUSTOM_TOOLS;
use crate::settings::DISABLED_TOOLS;

/// OpenCode's own tools that draftsmith leaves to it (`apply_patch` is offered by OpenCode
/// to the models that prefer patches, `edit`/`write` to the others).
pub const DELEGATED_TOOLS: &[&str] = &[
    "bash",
    "read",
    "glob",
    "grep",
    "edit",
    "write",
    "apply_patch",
    "todowrite",
    "task",
    "skill",
];

/// How permission requests are handled, in words for the capabilities endpoint.
pub const PERMISSION_MODEL: &str = "No request waits for a person. Edits and shell commands \
inside the workspace are allowed; reading .env files, touching paths outside the workspace, \
web access and the doom-loop guard are denied by configuration; any permission request that \
still reaches the engine is refused at once. OpenCode's path rules are not a boundary: the \
sandbox's confinement is (the server runs inside it, under bubblewrap when isolation is on). \
Provider API keys never enter the sandbox: OpenCode reaches its model through draftsmith's \
loopback model gate, which adds the key.";

/// The engine's policy, without availability (which depends on the binary being there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpencodePolicyInfo {
    /// Tools OpenCode brings itself and that draftsmith leaves to it.
    pub delegated_tools: Vec<String>,
    /// Tools switched off because they make no sense here.
    pub disabled_tools: Vec<String>,
    /// Custom tools seeded into each workspace's `.opencode/tools/`.
    pub project_custom_tools: Vec<String>,
    /// How permission requests are answered.
    pub permission_model: String,
}

impl OpencodePolicyInfo {
    /// The capabilities payload, with availability (`unavailable_reason`: why not, e.g. the
    /// binary is missing).
    pub fn into_api(self, unavailable_reason: Option<String>) -> OpencodePolicy {
        OpencodePolicy {
            available: unavailable_reason.is_none(),
            unavailable_reason,
            delegated_tools: self.delegated_tools,
            disabled_tools: self.disabled_tools,
            project_custom_tools: self.project_custom_tools,
            permission_model: self.permission_model,
        }
    }
}

/// The policy every run follows, for the capabilities endpoint.
pub fn policy() -> OpencodePolicyInfo {
    let owned = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
    OpencodePolicyInfo {
        delegated_tools: owned(DELEGATED_TOOLS),
        disabled_tools: owned(DISABLED_TOOLS),
        project_custom_tools: owned(PROJECT_CUSTOM_TOOLS),
        permission_model: PERMISSION_MODEL.to_owned(),
    }
}
