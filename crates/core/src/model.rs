//! What draftsmith knows about a model ([`ModelFacts`]: window, limits, vision, reasoning,
//! prices, caching) and what one model call consumed ([`Usage`]). Shared by the registry,
//! the engines, the API and the accounting that persists usage.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How a provider caches a conversation's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// Only where the request places `cache_control` markers (Anthropic).
    Marker,
    /// By itself, for any repeated prefix (OpenAI, DeepSeek, most compatible servers).
    Automatic,
    /// Not at all.
    None,
}

/// Prices in micro-dollars (millionths of a US dollar) per million tokens of each kind;
/// integers, so costs never accumulate float error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelPrices {
    /// Uncached input.
    pub input: u64,
    /// Output, reasoning included.
    pub output: u64,
    /// Input read from the provider's cache.
    pub cached_input: u64,
    /// Input written to the provider's cache.
    pub cache_write: u64,
}

impl ModelPrices {
    /// The cost of `usage` in micro-dollars, rounded up to a whole micro-dollar.
    pub fn cost_micro_usd(&self, usage: &Usage) -> u64 {
        let parts = [
            (usage.input_tokens, self.input),
            (usage.output_tokens, self.output),
            (usage.cache_read_tokens, self.cached_input),
            (usage.cache_write_tokens, self.cache_write),
        ];
        let total: u128 = parts
            .iter()
            .map(|(tokens, price)| u128::from(*tokens) * u128::from(*price))
            .sum();
        u64::try_from(total.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

/// The facts of one registered model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelFacts {
    /// Tokens the model reads and writes in one call, at most.
    pub context_window: u32,
    /// Tokens it may generate in one call (reasoning included).
    pub max_output_tokens: u32,
    /// Whether it accepts images.
    pub vision: bool,
    /// Whether it can reason before answering.
    pub reasoning: bool,
    /// Anthropic extended thinking: enabled with this budget of tokens, when set.
    pub thinking_budget: Option<u32>,
    /// OpenAI-compatible `reasoning_effort` (`minimal`, `low`, `medium`, `high`), sent only
    /// when set.
    pub reasoning_effort: Option<String>,
    /// Prices, when known.
    pub prices: Option<ModelPrices>,
    /// How the provider caches.
    pub caching: CacheMode,
}

/// Token counts of one model call, normalised across providers: `input_tokens` is the input
/// billed at the full rate (neither read from nor written to a cache), so the four input
/// kinds add up to the whole prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    /// Input billed at the full rate.
    pub input_tokens: u64,
    /// Generated tokens, reasoning included.
    pub output_tokens: u64,
    /// Input read from the cache.
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Input written to the cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// The part of `output_tokens` spent reasoning, when the provider says.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl Usage {
    /// The whole prompt: full-rate, cached and cache-written input.
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
    }
}

/// Token counts and cost summed over model calls (a run's, or a group's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageTotals {
    /// Input billed at the full rate.
    pub input_tokens: u64,
    /// Generated tokens, reasoning included.
    pub output_tokens: u64,
    /// Input read from the provider's cache.
    pub cache_read_tokens: u64,
    /// Input written to the provider's cache.
    pub cache_write_tokens: u64,
    /// The part of `output_tokens` spent reasoning.
    pub reasoning_tokens: u64,
    /// Cost in micro-dollars (millionths of a US dollar).
    pub cost_micro_usd: u64,
    /// Model calls counted.
    pub model_calls: u64,
    /// Of those, calls whose provider reported no usage, so counted by an estimate.
    pub estimated_calls: u64,
}

impl UsageTotals {
    /// Every token of every kind: the whole prompt plus the output.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.output_tokens
    }

    /// Adds another sum.
    pub fn add_totals(&mut self, other: &UsageTotals) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cost_micro_usd += other.cost_micro_usd;
        self.model_calls += other.model_calls;
        self.estimated_calls += other.estimated_calls;
    }

    /// Adds one call's counts and cost.
    pub fn add_call(&mut self, usage: &Usage, cost_micro_usd: u64, estimated: bool) {
        self.input_tokens += usage.input_tokens;
        self.output_tokens += usage.output_tokens;
        self.cache_read_tokens += usage.cache_read_tokens;
        self.cache_write_tokens += usage.cache_write_tokens;
        self.reasoning_tokens += usage.reasoning_tokens;
        self.cost_micro_usd += cost_micro_usd;
        self.model_calls += 1;
        self.estimated_calls += u64::from(estimated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_sums_each_kind_and_rounds_up() {
        // Claude Sonnet 4.5 list prices: $3 in, $15 out, $0.30 cache read, $3.75 write.
        let prices = ModelPrices {
            input: 3_000_000,
            output: 15_000_000,
            cached_input: 300_000,
            cache_write: 3_750_000,
        };
        let usage = Usage {
            input_tokens: 1_000,
            output_tokens: 100,
            cache_read_tokens: 10_000,
            cache_write_tokens: 2_000,
            reasoning_tokens: 50,
        };
        // 3000 + 1500 + 3000 + 7500 micro-dollars.
        assert_eq!(prices.cost_micro_usd(&usage), 15_000);
        let one = Usage {
            input_tokens: 1,
            ..Usage::default()
        };
        assert_eq!(prices.cost_micro_usd(&one), 3);
        let cheap = ModelPrices {
            input: 1,
            ..ModelPrices::default()
        };
        assert_eq!(cheap.cost_micro_usd(&one), 1, "a fraction rounds up");
        assert_eq!(usage.prompt_tokens(), 13_000);
        let mut sum = usage;
        sum.add(&one);
        assert_eq!(sum.input_tokens, 1_001);
    }
}
