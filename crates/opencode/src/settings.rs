//! The configuration handed to `opencode serve` in `OPENCODE_CONFIG_CONTENT`: the run's
//! pinned model as OpenCode's only provider, the tools that make no sense here switched off,
//! and a permission policy under which no request can wait for a human.

use std::collections::BTreeMap;

use draftsmith_engine::{ProviderKind, ResolvedModel};
use serde::Serialize;
use serde::ser::SerializeMap;

/// Built-in OpenCode tools switched off: `webfetch`/`websearch` reach the internet and
/// `question` waits for a person who is not there.
pub const DISABLED_TOOLS: &[&str] = &["webfetch", "websearch", "question"];

/// What OpenCode does when a rule matches (its `PermissionActionConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PermissionAction {
    /// Proceed.
    Allow,
    /// Fail the tool call; the model sees the refusal.
    Deny,
    /// Raise `permission.asked` and wait; the engine answers it (never leave a run waiting).
    Ask,
}

/// One permission entry: a single action, or patterns → actions (order matters: OpenCode
/// applies the last matching pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionRule {
    /// The same action for every pattern.
    Action(PermissionAction),
    /// Ordered pattern rules.
    Patterns(Vec<(String, PermissionAction)>),
}

impl Serialize for PermissionRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Action(action) => action.serialize(serializer),
            Self::Patterns(rules) => ordered_map(serializer, rules),
        }
    }
}

/// The permission section, kept in order (later rules override earlier ones in OpenCode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions(pub Vec<(String, PermissionRule)>);

impl Serialize for Permissions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ordered_map(serializer, &self.0)
    }
}

fn ordered_map<S: serde::Serializer, V: Serialize>(
    serializer: S,
    entries: &[(String, V)],
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(entries.len()))?;
    for (key, value) in entries {
        map.serialize_entry(key, value)?;
    }
    map.end()
}

/// draftsmith's permission policy: edits and commands allowed inside the workspace, the
/// rules OpenCode would *ask* about turned into answers (secrets files and paths outside the
/// workspace denied, the doom-loop guard denying the repeated call), web access denied.
pub fn default_permissions() -> Permissions {
    use PermissionAction::{Allow, Deny};
    let rule = |action| PermissionRule::Action(action);
    Permissions(vec![
        ("edit".into(), rule(Allow)),
        ("bash".into(), rule(Allow)),
        (
            "read".into(),
            PermissionRule::Patterns(vec![
                ("*".into(), Allow),
                ("*.env".into(), Deny),
                ("*.env.*".into(), Deny),
                ("*.env.example".into(), Allow),
            ]),
        ),
        ("external_directory".into(), rule(Deny)),
        ("doom_loop".into(), rule(Deny)),
        ("webfetch".into(), rule(Deny)),
        ("websearch".into(), rule(Deny)),
        ("question".into(), rule(Deny)),
    ])
}

/// `opencode.json` as draftsmith generates it (field names are OpenCode's).
#[derive(Debug, Clone, Serialize)]
pub struct OpencodeSettings {
    #[serde(rename = "$schema")]
    schema: &'static str,
    autoupdate: bool,
    share: &'static str,
    /// OpenCode's own git snapshots; draftsmith keeps checkpoints itself.
    snapshot: bool,
    lsp: bool,
    formatter: bool,
    provider: BTreeMap<String, ProviderEntry>,
    model: String,
    small_model: String,
    tools: BTreeMap<String, bool>,
    permission: Permissions,
}

/// One provider: which AI SDK package speaks to it, where, and its one model.
#[derive(Debug, Clone, Serialize)]
struct ProviderEntry {
    npm: &'static str,
    name: String,
    options: ProviderOptions,
    models: BTreeMap<String, ModelEntry>,
}

#[derive(Debug, Clone, Serialize)]
struct ProviderOptions {
    #[serde(rename = "baseURL")]
    base_url: String,
    #[serde(rename = "apiKey", skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
}

/// One model: its limits, modalities, prices and the provider options that carry its
/// reasoning setting (the AI SDK's `thinking.budgetTokens` for Anthropic,
/// `reasoningEffort` for OpenAI-compatible servers).
#[derive(Debug, Clone, Serialize)]
struct ModelEntry {
    name: String,
    tool_call: bool,
    attachment: bool,
    reasoning: bool,
    limit: Limit,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<Cost>,
    modalities: Modalities,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    options: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
struct Limit {
    context: u32,
    output: u32,
}

/// US dollars per million tokens.
#[derive(Debug, Clone, Serialize)]
struct Cost {
    input: f64,
    output: f64,
    cache_read: f64,
    cache_write: f64,
}

#[derive(Debug, Clone, Serialize)]
struct Modalities {
    input: Vec<&'static str>,
    output: Vec<&'static str>,
}

impl ModelEntry {
    fn new(model: &ResolvedModel) -> Self {
        let facts = &model.facts;
        let dollars = |micro: u64| micro as f64 / 1_000_000.0;
        let mut options = serde_json::Map::new();
        match model.spec.kind {
            ProviderKind::Anthropic => {
                if let Some(budget) = facts.thinking_budget.filter(|b| *b > 0) {
                    options.insert(
                        "thinking".into(),
                        serde_json::json!({"type": "enabled", "budgetTokens": budget}),
                    );
                }
            }
            ProviderKind::OpenAi => {
                if let Some(effort) = &facts.reasoning_effort {
                    options.insert("reasoningEffort".into(), effort.clone().into());
                }
            }
        }
        let mut input = vec!["text"];
        if facts.vision {
            input.push("image");
        }
        Self {
            name: model.name.clone(),
            tool_call: true,
            attachment: facts.vision,
            reasoning: facts.reasoning,
            limit: Limit {
                context: facts.context_window,
                output: facts.max_output_tokens,
            },
            cost: facts.prices.map(|p| Cost {
                input: dollars(p.input),
                output: dollars(p.output),
                cache_read: dollars(p.cached_input),
                cache_write: dollars(p.cache_write),
            }),
            modalities: Modalities {
                input,
                output: vec!["text"],
            },
            options,
        }
    }
}

/// The AI SDK package OpenCode loads for a provider kind; both are built into the binary,
/// so nothing is downloaded.
pub fn sdk_package(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "@ai-sdk/openai-compatible",
        ProviderKind::Anthropic => "@ai-sdk/anthropic",
    }
}

impl OpencodeSettings {
    /// The settings for a run pinned to `model`, with `extra` permission rules appended
    /// after draftsmith's (they win where they overlap).
    pub fn for_model(model: &ResolvedModel, extra: &[(String, PermissionAction)]) -> Self {
        let spec = &model.spec;
        let provider = ProviderEntry {
            npm: sdk_package(spec.kind),
            name: spec.id.clone(),
            options: ProviderOptions {
                base_url: spec.base_url.trim_end_matches('/').to_owned(),
                api_key: spec.api_key.clone(),
            },
            models: BTreeMap::from([(model.name.clone(), ModelEntry::new(model))]),
        };
        let qualified = format!("{}/{}", spec.id, model.name);
        let mut permission = default_permissions();
        permission.0.extend(
            extra
                .iter()
                .map(|(key, action)| (key.clone(), PermissionRule::Action(*action))),
        );
        Self {
            schema: "https://opencode.ai/config.json",
            autoupdate: false,
            share: "disabled",
            snapshot: false,
            lsp: false,
            formatter: false,
            provider: BTreeMap::from([(spec.id.clone(), provider)]),
            model: qualified.clone(),
            small_model: qualified,
            tools: DISABLED_TOOLS
                .iter()
                .map(|tool| ((*tool).to_owned(), false))
                .collect(),
            permission,
        }
    }

    /// The JSON text for `OPENCODE_CONFIG_CONTENT`.
    pub fn to_json(&self) -> String {
        // Serializing plain structs and maps of strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_generated_configuration_for_an_openai_compatible_model() {
        use draftsmith_engine::{ModelRegistry, ProviderSpec};
        let registry = ModelRegistry::new(
            vec![ProviderSpec {
                id: "local".into(),
                kind: ProviderKind::OpenAi,
                base_url: "http://127.0.0.1:9999/v1/".into(),
                api_key: Some("sk-test".into()),
                missing_key_env: None,
                models: vec!["coder".into()],
                demo: false,
            }],
            "local/coder".into(),
        );
        let model = registry.resolve(Some("local/coder")).unwrap();
        let json = OpencodeSettings::for_model(&model, &[]).to_json();
        let expected = r#"{"$schema":"https://opencode.ai/config.json","autoupdate":false,"share":"disabled","snapshot":false,"lsp":false,"formatter":false,"provider":{"local":{"npm":"@ai-sdk/openai-compatible","name":"local","options":{"baseURL":"http://127.0.0.1:9999/v1","apiKey":"sk-test"},"models":{"coder":{"name":"coder","tool_call":true,"attachment":false,"reasoning":false,"limit":{"context":32768,"output":8192},"modalities":{"input":["text"],"output":["text"]}}}}},"model":"local/coder","small_model":"local/coder","tools":{"question":false,"webfetch":false,"websearch":false},"permission":{"edit":"allow","bash":"allow","read":{"*":"allow","*.env":"deny","*.env.*":"deny","*.env.example":"allow"},"external_directory":"deny","doom_loop":"deny","webfetch":"deny","websearch":"deny","question":"deny"}}"#;
        assert_eq!(json, expected);
    }

    #[test]
    fn model_settings_reach_the_provider_configuration() {
        use std::collections::BTreeMap;

        use draftsmith_engine::{ModelRegistry, ModelSettings, ProviderSpec};
        let spec = |id: &str, kind, model: &str| ProviderSpec {
            id: id.into(),
            kind,
            base_url: "http://127.0.0.1:9999/v1".into(),
            api_key: None,
            missing_key_env: None,
            models: vec![model.into()],
            demo: false,
        };
        let registry = ModelRegistry::new(
            vec![
                spec("claude", ProviderKind::Anthropic, "claude-sonnet-4-5"),
                spec("oai", ProviderKind::OpenAi, "o4-mini"),
            ],
            "claude/claude-sonnet-4-5".into(),
        )
        .with_settings(&BTreeMap::from([
            (
                "claude/claude-sonnet-4-5".to_owned(),
                ModelSettings {
                    thinking_budget: Some(4096),
                    ..ModelSettings::default()
                },
            ),
            (
                "oai/o4-mini".to_owned(),
                ModelSettings {
                    reasoning_effort: Some("low".into()),
                    ..ModelSettings::default()
                },
            ),
        ]))
        .unwrap();
        let entry = |id: &str, provider: &str, name: &str| {
            let model = registry.resolve(Some(id)).unwrap();
            let json: serde_json::Value =
                serde_json::from_str(&OpencodeSettings::for_model(&model, &[]).to_json()).unwrap();
            json["provider"][provider]["models"][name].clone()
        };
        let claude = entry("claude/claude-sonnet-4-5", "claude", "claude-sonnet-4-5");
        assert_eq!(
            claude["options"],
            serde_json::json!({"thinking": {"type": "enabled", "budgetTokens": 4096}})
        );
        assert_eq!(claude["limit"]["context"], 200_000);
        assert_eq!(claude["cost"]["cache_read"], 0.3);
        assert_eq!(
            claude["modalities"]["input"],
            serde_json::json!(["text", "image"])
        );
        let o4 = entry("oai/o4-mini", "oai", "o4-mini");
        assert_eq!(o4["options"], serde_json::json!({"reasoningEffort": "low"}));
        assert_eq!(o4["reasoning"], true);
    }

    #[test]
    fn permission_rules_keep_their_order() {
        let json = serde_json::to_string(&default_permissions()).unwrap();
        let star = json.find("\"*\":\"allow\"").unwrap();
        let env = json.find("\"*.env\":\"deny\"").unwrap();
        let example = json.find("\"*.env.example\":\"allow\"").unwrap();
        assert!(star < env && env < example, "{json}");
        assert!(json.contains("\"external_directory\":\"deny\""));
    }
}
