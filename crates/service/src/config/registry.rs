//! The model registry the configuration describes.

use draftsmith_engine::{ModelRegistry, ProviderKind, ProviderSpec};

use super::{Config, ConfigError};

/// Providers known by name, used when their `…_API_KEY` is set and the file does not
/// configure a provider of the same id: (id, kind, variable prefix, API root, models).
const WELL_KNOWN: [(&str, ProviderKind, &str, &str, &str); 2] = [
    (
        "openai",
        ProviderKind::OpenAi,
        "OPENAI",
        "https://api.openai.com/v1",
        "gpt-4.1-mini,gpt-4.1",
    ),
    (
        "anthropic",
        ProviderKind::Anthropic,
        "ANTHROPIC",
        "https://api.anthropic.com/v1",
        "claude-sonnet-4-5",
    ),
];

impl Config {
    /// The model registry: configured providers, then `OPENAI_API_KEY` and
    /// `ANTHROPIC_API_KEY` when set, then the demo provider when given.
    pub fn model_registry(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        demo_base_url: Option<&str>,
    ) -> Result<ModelRegistry, ConfigError> {
        let mut specs: Vec<ProviderSpec> = self
            .providers
            .iter()
            .map(|p| {
                let key = p.api_key_env.as_deref().and_then(env);
                ProviderSpec {
                    id: p.id.clone(),
                    kind: p.kind,
                    base_url: p.base_url.clone(),
                    missing_key_env: p.api_key_env.clone().filter(|_| key.is_none()),
                    api_key: key,
                    models: p.models.clone(),
                    demo: false,
                }
            })
            .collect();
        for (id, kind, prefix, base, models) in WELL_KNOWN {
            let Some(key) = env(&format!("{prefix}_API_KEY")).filter(|k| !k.is_empty()) else {
                continue;
            };
            if specs.iter().any(|s| s.id == id) {
                continue;
            }
            let models = env(&format!("{prefix}_MODELS")).unwrap_or_else(|| models.to_owned());
            specs.push(ProviderSpec {
                id: id.into(),
                kind,
                base_url: env(&format!("{prefix}_BASE_URL")).unwrap_or_else(|| base.to_owned()),
                api_key: Some(key),
                missing_key_env: None,
                models: models
                    .split(',')
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect(),
                demo: false,
            });
        }
        if let Some(base) = demo_base_url {
            specs.push(ProviderSpec {
                id: "demo".into(),
                kind: ProviderKind::OpenAi,
                base_url: base.to_owned(),
                api_key: None,
                missing_key_env: None,
                models: vec!["coder".into()],
                demo: true,
            });
        }
        ModelRegistry::new(specs, self.models.default.clone())
            .with_settings(&self.models.settings)
            .map_err(|e| ConfigError::Env {
                var: "models.settings",
                message: e.0,
            })
    }
}
