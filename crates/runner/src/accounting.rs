//! What a run's model calls cost: each call priced from the model's facts (or the cost
//! its provider reported when the model has no prices), its estimate standing in when the
//! provider reported no usage, then added to the run's totals.

use draftsmith_core::api::RunBudget;
use draftsmith_core::{AppId, ModelPrices, RunId, Timestamp, Usage, UsageTotals, UserId};
use draftsmith_engine::{ModelCall, Spending};
use draftsmith_store::NewModelCall;

use crate::budget::Clock;

/// Who pays for a run's calls, and at what prices.
#[derive(Clone)]
pub struct Account {
    /// The run.
    pub run: RunId,
    /// Its app.
    pub app: AppId,
    /// Who started it.
    pub user: UserId,
    /// The run's model's prices, when configured.
    pub prices: Option<ModelPrices>,
    /// The run's own limits.
    pub budget: RunBudget,
    /// When calls are recorded.
    pub clock: Clock,
    /// Whether calls are recorded at all (`[metrics] accounting`).
    pub enabled: bool,
}

impl Account {
    /// The record of `call`: its counts (or the estimate) and its cost.
    pub fn price(&self, call: &ModelCall, at: Timestamp) -> NewModelCall {
        let (usage, estimated): (Usage, bool) = match call.usage {
            Some(usage) => (usage, false),
            None => (call.estimate, true),
        };
        let cost_micro_usd = match (self.prices, call.reported_cost_micro_usd) {
            (Some(prices), _) => prices.cost_micro_usd(&usage),
            (None, Some(reported)) => reported,
            (None, None) => 0,
        };
        NewModelCall {
            run: self.run,
            app: self.app,
            user: self.user.clone(),
            model: call.model.clone(),
            step: call.step as u64,
            usage,
            cost_micro_usd,
            estimated,
            ms: call.ms,
            at,
        }
    }

    /// Adds `call` to the run's running `totals` (the run is their only writer, so they
    /// are exact without reading the store) and says whether the run's budget is spent
    /// now; the record is for the store, written with the run's next events.
    pub fn charge(&self, totals: &mut UsageTotals, call: &ModelCall) -> (NewModelCall, Spending) {
        let record = self.price(call, (self.clock)());
        totals.add_totals(&UsageTotals {
            input_tokens: record.usage.input_tokens,
            output_tokens: record.usage.output_tokens,
            cache_read_tokens: record.usage.cache_read_tokens,
            cache_write_tokens: record.usage.cache_write_tokens,
            reasoning_tokens: record.usage.reasoning_tokens,
            cost_micro_usd: record.cost_micro_usd,
            model_calls: 1,
            estimated_calls: u64::from(record.estimated),
        });
        let spending = if self.budget.reached(totals) {
            Spending::Spent
        } else {
            Spending::Within
        };
        (record, spending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(usage: Option<Usage>, reported: Option<u64>) -> ModelCall {
        ModelCall {
            model: "p/m".into(),
            step: 2,
            usage,
            estimate: Usage {
                input_tokens: 7,
                output_tokens: 3,
                ..Usage::default()
            },
            reported_cost_micro_usd: reported,
            ms: 5,
        }
    }

    fn account(prices: Option<ModelPrices>) -> Account {
        Account {
            run: RunId::new(),
            app: AppId::new(),
            user: UserId("u".into()),
            prices,
            budget: RunBudget::default(),
            clock: crate::budget::wall_clock(),
            enabled: true,
        }
    }

    #[test]
    fn configured_prices_win_then_the_reported_cost_then_nothing() {
        let prices = ModelPrices {
            input: 1_000_000,
            output: 2_000_000,
            ..ModelPrices::default()
        };
        let reported = Usage {
            input_tokens: 10,
            output_tokens: 1,
            ..Usage::default()
        };
        let priced =
            account(Some(prices)).price(&call(Some(reported), Some(999)), Timestamp::now());
        assert_eq!((priced.cost_micro_usd, priced.estimated), (12, false));
        let unpriced = account(None).price(&call(Some(reported), Some(999)), Timestamp::now());
        assert_eq!(unpriced.cost_micro_usd, 999);
        let estimated = account(Some(prices)).price(&call(None, None), Timestamp::now());
        assert!(estimated.estimated);
        assert_eq!(estimated.usage.input_tokens, 7);
        assert_eq!(estimated.cost_micro_usd, 13);
        assert_eq!(
            account(None)
                .price(&call(None, None), Timestamp::now())
                .cost_micro_usd,
            0
        );
    }

    #[test]
    fn charges_add_up_and_spend_the_budget_at_its_limit() {
        let mut account = account(Some(ModelPrices {
            input: 1_000_000,
            output: 1_000_000,
            ..ModelPrices::default()
        }));
        account.budget.max_tokens = Some(20);
        let mut totals = UsageTotals::default();
        let (first, spending) = account.charge(&mut totals, &call(None, None));
        assert_eq!((first.usage.input_tokens, spending), (7, Spending::Within));
        let (_, spending) = account.charge(&mut totals, &call(None, None));
        assert_eq!(
            (
                totals.total_tokens(),
                totals.model_calls,
                totals.estimated_calls
            ),
            (20, 2, 2)
        );
        assert_eq!((totals.cost_micro_usd, spending), (20, Spending::Spent));
    }
}
