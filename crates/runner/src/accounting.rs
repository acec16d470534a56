//! What a run's model calls cost: each call priced from the model's facts (or the cost
//! its provider reported when the model has no prices), its estimate standing in when the
//! provider reported no usage, then recorded with the run's totals.

use draftsmith_core::api::RunBudget;
use draftsmith_core::{AppId, ModelPrices, RunId, Timestamp, Usage, UserId};
use draftsmith_engine::{ModelCall, Spending};
use draftsmith_store::{NewModelCall, Store};

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

    /// Records `call` and says whether the run's budget is spent now. A store that refused
    /// is only logged: accounting never fails a run.
    pub async fn record(&self, store: &dyn Store, call: &ModelCall) -> Spending {
        let record = self.price(call, (self.clock)());
        match store.record_model_call(record).await {
            Ok(totals) if self.budget.reached(&totals) => Spending::Spent,
            Ok(_) => Spending::Within,
            Err(err) => {
                tracing::warn!(run = %self.run, error = %err, "a model call's usage was not recorded");
                Spending::Within
            }
        }
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
}
