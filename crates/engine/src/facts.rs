//! Model facts: defaults for well-known model families, overridden per model by the
//! configuration ([`ModelSettings`]), and checked so a bad setting fails at start with a
//! message naming the model and the field.

use draftsmith_core::{CacheMode, ModelFacts, ModelPrices};
use serde::Deserialize;

use crate::model::ProviderKind;

/// The `reasoning_effort` values OpenAI-compatible servers accept.
pub const REASONING_EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high"];

/// The smallest thinking budget the Messages API accepts.
pub const MIN_THINKING_BUDGET: u32 = 1_024;

/// One model's settings in the configuration; every field overrides the family default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// Tokens per call, input and output together.
    pub context_window: Option<u32>,
    /// Tokens it may generate per call.
    pub max_output_tokens: Option<u32>,
    /// Whether it accepts images.
    pub vision: Option<bool>,
    /// Whether it reasons.
    pub reasoning: Option<bool>,
    /// Anthropic: enable extended thinking with this budget (at least 1024; 0 disables).
    pub thinking_budget: Option<u32>,
    /// OpenAI-compatible: the `reasoning_effort` to send.
    pub reasoning_effort: Option<String>,
    /// Prices in US dollars per million tokens.
    pub prices: Option<PriceSettings>,
    /// `marker`, `automatic` or `none`.
    pub caching: Option<CacheMode>,
}

/// Prices as configured: US dollars per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSettings {
    /// Uncached input.
    pub input: f64,
    /// Output.
    pub output: f64,
    /// Cached input (defaults to the input price).
    pub cached_input: Option<f64>,
    /// Cache writes (defaults to the input price).
    pub cache_write: Option<f64>,
}

/// Dollars per million tokens → micro-dollars per million tokens.
fn micro(dollars: f64) -> Result<u64, String> {
    if !dollars.is_finite() || dollars < 0.0 {
        return Err(format!(
            "a price must be a non-negative number, got {dollars}"
        ));
    }
    Ok((dollars * 1_000_000.0).round() as u64)
}

impl PriceSettings {
    fn to_prices(self) -> Result<ModelPrices, String> {
        Ok(ModelPrices {
            input: micro(self.input)?,
            output: micro(self.output)?,
            cached_input: micro(self.cached_input.unwrap_or(self.input))?,
            cache_write: micro(self.cache_write.unwrap_or(self.input))?,
        })
    }
}

/// Dollars per million: input, output, cache read, cache write.
fn prices(p: [f64; 4]) -> Option<ModelPrices> {
    let m = |d: f64| (d * 1_000_000.0).round() as u64;
    Some(ModelPrices {
        input: m(p[0]),
        output: m(p[1]),
        cached_input: m(p[2]),
        cache_write: m(p[3]),
    })
}

/// A family's facts: (name prefixes, context window, output limit, vision, reasoning,
/// prices in dollars per million input, output, cached input and cache-write tokens).
type Family = (
    &'static [&'static str],
    u32,
    u32,
    bool,
    bool,
    Option<[f64; 4]>,
);

/// Known families, the more specific prefix first; the first whose prefix the model name
/// starts with applies.
#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    (&["claude-opus-4-5"], 200_000, 64_000, true, true, Some([5.0, 25.0, 0.5, 6.25])),
    (&["claude-opus-4"], 200_000, 32_000, true, true, Some([15.0, 75.0, 1.5, 18.75])),
    (&["claude-sonnet-4", "claude-3-7-sonnet"], 200_000, 64_000, true, true, Some([3.0, 15.0, 0.3, 3.75])),
    (&["claude-haiku-4"], 200_000, 64_000, true, true, Some([1.0, 5.0, 0.1, 1.25])),
    (&["claude-3-5-haiku"], 200_000, 8_192, true, false, Some([0.8, 4.0, 0.08, 1.0])),
    (&["claude"], 200_000, 8_192, true, false, None),
    (&["gpt-4.1-nano"], 1_047_576, 32_768, true, false, Some([0.1, 0.4, 0.025, 0.1])),
    (&["gpt-4.1-mini"], 1_047_576, 32_768, true, false, Some([0.4, 1.6, 0.1, 0.4])),
    (&["gpt-4.1"], 1_047_576, 32_768, true, false, Some([2.0, 8.0, 0.5, 2.0])),
    (&["gpt-4o-mini"], 128_000, 16_384, true, false, Some([0.15, 0.6, 0.075, 0.15])),
    (&["gpt-4o"], 128_000, 16_384, true, false, Some([2.5, 10.0, 1.25, 2.5])),
    (&["gpt-5-nano"], 400_000, 128_000, true, true, Some([0.05, 0.4, 0.005, 0.05])),
    (&["gpt-5-mini"], 400_000, 128_000, true, true, Some([0.25, 2.0, 0.025, 0.25])),
    (&["gpt-5"], 400_000, 128_000, true, true, Some([1.25, 10.0, 0.125, 1.25])),
    (&["o4-mini"], 200_000, 100_000, true, true, Some([1.1, 4.4, 0.275, 1.1])),
    (&["o3", "o1"], 200_000, 100_000, true, true, None),
    (&["deepseek-reasoner"], 128_000, 64_000, false, true, None),
    (&["deepseek"], 128_000, 8_192, false, false, None),
];

/// An unknown model: a small window, no vision, no reasoning, no prices.
const UNKNOWN: Family = (&[], 32_768, 8_192, false, false, None);

/// The defaults for `name` (a provider's model name; an aggregator's `vendor/` prefix is
/// ignored) spoken over `kind`.
pub fn family_defaults(kind: ProviderKind, name: &str) -> ModelFacts {
    let model = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    let (_, window, output, vision, reasoning, price) = FAMILIES
        .iter()
        .find(|(prefixes, ..)| prefixes.iter().any(|p| model.starts_with(p)))
        .copied()
        .unwrap_or(UNKNOWN);
    ModelFacts {
        context_window: window,
        max_output_tokens: output,
        vision,
        reasoning,
        thinking_budget: None,
        reasoning_effort: None,
        prices: price.and_then(prices),
        caching: match kind {
            ProviderKind::Anthropic => CacheMode::Marker,
            ProviderKind::OpenAi => CacheMode::Automatic,
        },
    }
}

impl ModelSettings {
    /// `defaults` with these settings applied, or why they do not fit the model.
    pub fn apply(&self, kind: ProviderKind, mut facts: ModelFacts) -> Result<ModelFacts, String> {
        if let Some(v) = self.context_window {
            facts.context_window = v;
        }
        if let Some(v) = self.max_output_tokens {
            facts.max_output_tokens = v;
        }
        if let Some(v) = self.vision {
            facts.vision = v;
        }
        if let Some(v) = self.reasoning {
            facts.reasoning = v;
        }
        if let Some(caching) = self.caching {
            facts.caching = caching;
        }
        if let Some(p) = self.prices {
            facts.prices = Some(p.to_prices()?);
        }
        if facts.context_window == 0 || facts.max_output_tokens == 0 {
            return Err("context_window and max_output_tokens must be positive".into());
        }
        if facts.max_output_tokens > facts.context_window {
            return Err(format!(
                "max_output_tokens {} exceeds context_window {}",
                facts.max_output_tokens, facts.context_window
            ));
        }
        match self.thinking_budget {
            None | Some(0) => {}
            Some(_) if kind != ProviderKind::Anthropic => {
                return Err("thinking_budget is an Anthropic setting; use reasoning_effort".into());
            }
            Some(budget) if budget < MIN_THINKING_BUDGET => {
                return Err(format!(
                    "thinking_budget {budget} is below the Messages API minimum of {MIN_THINKING_BUDGET}"
                ));
            }
            Some(budget) if budget >= facts.max_output_tokens => {
                return Err(format!(
                    "thinking_budget {budget} must be below max_output_tokens {}",
                    facts.max_output_tokens
                ));
            }
            Some(budget) => {
                facts.thinking_budget = Some(budget);
                facts.reasoning = true;
            }
        }
        if let Some(effort) = &self.reasoning_effort {
            if kind != ProviderKind::OpenAi {
                return Err(
                    "reasoning_effort is an OpenAI-compatible setting; use thinking_budget".into(),
                );
            }
            if !REASONING_EFFORTS.contains(&effort.as_str()) {
                return Err(format!(
                    "reasoning_effort {effort:?} is not one of {}",
                    REASONING_EFFORTS.join(", ")
                ));
            }
            facts.reasoning_effort = Some(effort.clone());
            facts.reasoning = true;
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn families_have_their_facts() {
        let sonnet = family_defaults(ProviderKind::Anthropic, "claude-sonnet-4-5");
        assert_eq!(sonnet.context_window, 200_000);
        assert_eq!(sonnet.max_output_tokens, 64_000);
        assert!(sonnet.vision && sonnet.reasoning);
        assert_eq!(sonnet.caching, CacheMode::Marker);
        assert_eq!(sonnet.prices.unwrap().cached_input, 300_000);
        let routed = family_defaults(ProviderKind::OpenAi, "openai/gpt-4.1-mini");
        assert_eq!(routed.context_window, 1_047_576);
        assert_eq!(routed.caching, CacheMode::Automatic);
        assert_eq!(routed.prices.unwrap().input, 400_000);
        let unknown = family_defaults(ProviderKind::OpenAi, "coder");
        assert_eq!((unknown.context_window, unknown.vision), (32_768, false));
        assert_eq!(unknown.prices, None);
    }

    #[test]
    fn settings_override_and_are_checked() {
        let base = family_defaults(ProviderKind::Anthropic, "claude-sonnet-4-5");
        let thinking = ModelSettings {
            thinking_budget: Some(4_000),
            prices: Some(PriceSettings {
                input: 1.5,
                output: 2.0,
                cached_input: None,
                cache_write: Some(0.25),
            }),
            ..ModelSettings::default()
        };
        let facts = thinking
            .apply(ProviderKind::Anthropic, base.clone())
            .unwrap();
        assert_eq!(facts.thinking_budget, Some(4_000));
        let prices = facts.prices.unwrap();
        assert_eq!((prices.input, prices.cached_input), (1_500_000, 1_500_000));
        assert_eq!(prices.cache_write, 250_000);

        let bad = |settings: ModelSettings, kind| settings.apply(kind, base.clone()).unwrap_err();
        let low = ModelSettings {
            thinking_budget: Some(100),
            ..ModelSettings::default()
        };
        assert!(bad(low, ProviderKind::Anthropic).contains("minimum"));
        let effort = ModelSettings {
            reasoning_effort: Some("high".into()),
            ..ModelSettings::default()
        };
        assert!(bad(effort.clone(), ProviderKind::Anthropic).contains("OpenAI"));
        let ok = effort.apply(ProviderKind::OpenAi, base.clone()).unwrap();
        assert_eq!(ok.reasoning_effort.as_deref(), Some("high"));
        let weird = ModelSettings {
            reasoning_effort: Some("max".into()),
            ..ModelSettings::default()
        };
        assert!(bad(weird, ProviderKind::OpenAi).contains("not one of"));
        let huge = ModelSettings {
            thinking_budget: Some(64_000),
            ..ModelSettings::default()
        };
        assert!(bad(huge, ProviderKind::Anthropic).contains("below max_output_tokens"));
        let negative = ModelSettings {
            prices: Some(PriceSettings {
                input: -1.0,
                ..PriceSettings::default()
            }),
            ..ModelSettings::default()
        };
        assert!(bad(negative, ProviderKind::Anthropic).contains("non-negative"));
    }
}
