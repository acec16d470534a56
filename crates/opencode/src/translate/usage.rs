//! OpenCode's own account of each model call: an assistant message, once completed,
//! carries its `tokens` (input without the cache, output without reasoning, reasoning,
//! cache reads and writes) and `cost` in dollars. Each message is counted once, however
//! often it is seen again (events and polled snapshots overlap).

use std::collections::HashSet;

use draftsmith_core::Usage;

use crate::wire::{MessageInfo, MessageTokens};

/// One completed model call as OpenCode reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedCall {
    /// Token counts, normalised like draftsmith's (`output_tokens` includes reasoning);
    /// `None` when OpenCode gave none.
    pub usage: Option<Usage>,
    /// OpenCode's cost, in micro-dollars, when it reported one above zero.
    pub cost_micro_usd: Option<u64>,
    /// From the message's creation to its completion.
    pub ms: u64,
}

/// The completed assistant messages counted so far, and those not yet handed on.
#[derive(Debug, Default)]
pub struct UsageLog {
    counted: HashSet<String>,
    pending: Vec<ReportedCall>,
}

impl UsageLog {
    /// Notes `info` when it is a completed assistant message not counted yet.
    pub fn observe(&mut self, info: &MessageInfo) {
        let Some(completed) = info.time.completed else {
            return;
        };
        if info.role != "assistant" {
            return;
        }
        if !self.counted.insert(info.id.clone()) {
            return;
        }
        let cost_micro_usd = info
            .cost
            .filter(|c| c.is_finite() && *c > 0.0)
            .map(|c| (c * 1_000_000.0).round() as u64);
        self.pending.push(ReportedCall {
            usage: info.tokens.as_ref().and_then(normalise),
            cost_micro_usd,
            ms: completed.saturating_sub(info.time.created.unwrap_or(completed)),
        });
    }

    /// The calls noted since the last take.
    pub fn take(&mut self) -> Vec<ReportedCall> {
        std::mem::take(&mut self.pending)
    }
}

/// OpenCode's counts in draftsmith's terms; all zero means it reported nothing.
fn normalise(tokens: &MessageTokens) -> Option<Usage> {
    let usage = Usage {
        input_tokens: tokens.input,
        output_tokens: tokens.output + tokens.reasoning,
        cache_read_tokens: tokens.cache.read,
        cache_write_tokens: tokens.cache.write,
        reasoning_tokens: tokens.reasoning,
    };
    (usage != Usage::default()).then_some(usage)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn info(id: &str, completed: bool, tokens: serde_json::Value) -> MessageInfo {
        let mut raw = serde_json::json!({
            "id": id, "role": "assistant", "time": {"created": 1},
            "tokens": tokens, "cost": 0.0125
        });
        if completed {
            raw["time"]["completed"] = 2.into();
        }
        serde_json::from_value(raw).unwrap()
    }

    #[test]
    fn a_completed_message_counts_once_with_reasoning_in_the_output() {
        let tokens = serde_json::json!({"input": 100, "output": 20, "reasoning": 5,
            "cache": {"read": 300, "write": 7}});
        let mut log = UsageLog::default();
        log.observe(&info("m1", false, tokens.clone()));
        assert!(log.take().is_empty(), "not completed yet");
        log.observe(&info("m1", true, tokens.clone()));
        log.observe(&info("m1", true, tokens));
        let calls = log.take();
        assert_eq!(calls.len(), 1);
        let usage = calls[0].usage.unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (100, 25));
        assert_eq!(
            (usage.cache_read_tokens, usage.cache_write_tokens),
            (300, 7)
        );
        assert_eq!(usage.reasoning_tokens, 5);
        assert_eq!(calls[0].cost_micro_usd, Some(12_500));
        let silent = serde_json::json!({"input": 0, "output": 0, "reasoning": 0,
            "cache": {"read": 0, "write": 0}});
        log.observe(&info("m2", true, silent));
        let silent = log.take();
        assert_eq!(silent[0].usage, None);
        assert_eq!(silent[0].ms, 1);
    }
}
