//! The model registry (SPEC §8): providers from configuration and environment, which of
//! their models are available, and what `auto` resolves to.

use std::collections::BTreeMap;
use std::sync::Arc;

use draftsmith_core::ModelFacts;
use draftsmith_core::api::{ModelInfo, ModelList};

use crate::facts::{ModelSettings, family_defaults};
use crate::model::Provider;
pub use crate::model::ProviderKind;
use crate::providers::anthropic::AnthropicProvider;
use crate::providers::openai::OpenAiProvider;

/// A registry entry bound to a live provider client.
#[derive(Clone)]
pub struct ResolvedModel {
    /// `provider/model`.
    pub id: String,
    /// The name the provider knows it by.
    pub name: String,
    /// The client.
    pub provider: Arc<dyn Provider>,
    /// Its window, limits, reasoning setting, prices and caching.
    pub facts: draftsmith_core::ModelFacts,
    /// Where the provider lives and how to reach it, for engines that call it themselves
    /// (OpenCode is configured with it).
    pub spec: ProviderSpec,
}

/// One configured provider.
#[derive(Debug, Clone)]
pub struct ProviderSpec {
    /// Prefix of its model ids.
    pub id: String,
    /// Protocol.
    pub kind: ProviderKind,
    /// API root.
    pub base_url: String,
    /// The key, when one was found.
    pub api_key: Option<String>,
    /// The environment variable that should hold the key but is unset.
    pub missing_key_env: Option<String>,
    /// Model names.
    pub models: Vec<String>,
    /// The built-in scripted demo provider; `auto` prefers any real one.
    pub demo: bool,
}

/// Why a model cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Providers and the default model; cheap to clone, swapped whole on reload.
#[derive(Clone)]
pub struct ModelRegistry {
    providers: Vec<ProviderSpec>,
    default: String,
    http: reqwest::Client,
    /// Facts per `provider/model`, family defaults with the configured settings applied.
    facts: BTreeMap<String, ModelFacts>,
}

impl ModelRegistry {
    /// A registry over `providers` whose `auto` prefers `default`.
    pub fn new(providers: Vec<ProviderSpec>, default: String) -> Self {
        let facts = providers
            .iter()
            .flat_map(|spec| {
                spec.models.iter().map(|model| {
                    (
                        format!("{}/{model}", spec.id),
                        family_defaults(spec.kind, model),
                    )
                })
            })
            .collect();
        Self {
            providers,
            default,
            http: reqwest::Client::new(),
            facts,
        }
    }

    /// Applies per-model settings keyed by `provider/model`; an unknown model or a setting
    /// that does not fit its model is an error naming both.
    pub fn with_settings(
        mut self,
        settings: &BTreeMap<String, ModelSettings>,
    ) -> Result<Self, Unavailable> {
        for (id, setting) in settings {
            let (spec, _) = self
                .find(id)
                .ok_or_else(|| Unavailable(format!("model settings for unknown model {id:?}")))?;
            let kind = spec.kind;
            let facts = self
                .facts
                .get_mut(id)
                .ok_or_else(|| Unavailable(format!("model settings for unknown model {id:?}")))?;
            *facts = setting
                .apply(kind, facts.clone())
                .map_err(|e| Unavailable(format!("model {id}: {e}")))?;
        }
        Ok(self)
    }

    /// The facts of `provider/model`.
    pub fn facts(&self, id: &str) -> Option<&ModelFacts> {
        self.facts.get(id)
    }

    fn find(&self, id: &str) -> Option<(&ProviderSpec, &str)> {
        let (provider, model) = id.split_once('/')?;
        let spec = self.providers.iter().find(|p| p.id == provider)?;
        let model = spec.models.iter().find(|m| m.as_str() == model)?;
        Some((spec, model.as_str()))
    }

    fn availability(spec: &ProviderSpec) -> Result<(), Unavailable> {
        match &spec.missing_key_env {
            Some(var) => Err(Unavailable(format!(
                "provider {} needs its API key in {var}, which is not set",
                spec.id
            ))),
            None => Ok(()),
        }
    }

    /// Every registered model with its availability.
    pub fn list(&self) -> ModelList {
        let models = self
            .providers
            .iter()
            .flat_map(|spec| {
                spec.models.iter().map(move |model| {
                    let availability = Self::availability(spec);
                    let id = format!("{}/{model}", spec.id);
                    let facts = self
                        .facts
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| family_defaults(spec.kind, model));
                    ModelInfo {
                        facts,
                        id,
                        provider: spec.id.clone(),
                        kind: spec.kind.as_str().into(),
                        available: availability.is_ok(),
                        unavailable_reason: availability.err().map(|e| e.0),
                    }
                })
            })
            .collect();
        ModelList {
            models,
            auto: self.auto().ok(),
        }
    }

    /// What `auto` means now: the configured default when available, else the first
    /// available model of a real provider, else the demo.
    pub fn auto(&self) -> Result<String, Unavailable> {
        if self
            .find(&self.default)
            .is_some_and(|(spec, _)| Self::availability(spec).is_ok())
        {
            return Ok(self.default.clone());
        }
        let available = |demo: bool| {
            self.providers
                .iter()
                .filter(|p| p.demo == demo && Self::availability(p).is_ok())
                .find_map(|p| p.models.first().map(|m| format!("{}/{m}", p.id)))
        };
        available(false)
            .or_else(|| available(true))
            .ok_or_else(|| Unavailable("no model provider is configured".into()))
    }

    /// Resolves `requested` (`None` or `auto` for the default) to a live provider client.
    pub fn resolve(&self, requested: Option<&str>) -> Result<ResolvedModel, Unavailable> {
        let id = match requested.map(str::trim) {
            None | Some("") | Some("auto") => self.auto()?,
            Some(id) => id.to_owned(),
        };
        let (spec, model) = self
            .find(&id)
            .ok_or_else(|| Unavailable(format!("unknown model {id:?}")))?;
        Self::availability(spec)?;
        let provider: Arc<dyn Provider> = match spec.kind {
            ProviderKind::OpenAi => Arc::new(OpenAiProvider::new(
                spec.base_url.clone(),
                spec.api_key.clone(),
                self.http.clone(),
            )),
            ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(
                spec.base_url.clone(),
                spec.api_key.clone(),
                self.http.clone(),
            )),
        };
        let facts = self
            .facts
            .get(&id)
            .cloned()
            .unwrap_or_else(|| family_defaults(spec.kind, model));
        Ok(ResolvedModel {
            facts,
            id,
            name: model.to_owned(),
            provider,
            spec: spec.clone(),
        })
    }

    /// The provider specs, e.g. for OpenCode's configuration.
    pub fn providers(&self) -> &[ProviderSpec] {
        &self.providers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, demo: bool, missing: Option<&str>) -> ProviderSpec {
        ProviderSpec {
            id: id.into(),
            kind: ProviderKind::OpenAi,
            base_url: "http://127.0.0.1:1/v1".into(),
            api_key: None,
            missing_key_env: missing.map(str::to_owned),
            models: vec!["coder".into()],
            demo,
        }
    }

    #[test]
    fn auto_prefers_default_then_real_then_demo() {
        let only_demo = ModelRegistry::new(vec![spec("demo", true, None)], "local/coder".into());
        assert_eq!(only_demo.auto(), Ok("demo/coder".into()));
        let both = ModelRegistry::new(
            vec![spec("demo", true, None), spec("openai", false, None)],
            "local/coder".into(),
        );
        assert_eq!(both.auto(), Ok("openai/coder".into()));
        let with_default = ModelRegistry::new(
            vec![spec("openai", false, None), spec("local", false, None)],
            "local/coder".into(),
        );
        assert_eq!(with_default.auto(), Ok("local/coder".into()));
        let none = ModelRegistry::new(vec![spec("x", false, Some("X_KEY"))], "x/coder".into());
        assert!(none.auto().is_err());
    }

    #[test]
    fn unknown_and_keyless_models_are_unavailable() {
        let registry = ModelRegistry::new(
            vec![
                spec("ok", false, None),
                spec("nokey", false, Some("NOKEY_API_KEY")),
            ],
            "ok/coder".into(),
        );
        assert!(registry.resolve(Some("ok/coder")).is_ok());
        assert!(registry.resolve(Some("ok/other")).is_err());
        assert!(registry.resolve(Some("garbage")).is_err());
        let err = registry
            .resolve(Some("nokey/coder"))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert!(err.contains("NOKEY_API_KEY"), "{err}");
        let list = registry.list();
        assert_eq!(list.models.len(), 2);
        assert!(!list.models[1].available);
        assert_eq!(list.auto.as_deref(), Some("ok/coder"));
    }
}
