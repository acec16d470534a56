//! Budgets: a run's own (its `max_cost` and `max_tokens`, from the request within the
//! configured ceiling, else the configured default), which pauses it at the next step
//! boundary, and each user's spending per UTC day and month, checked before a run is
//! created. Time comes from an injectable [`Clock`] so tests can cross a period's end.

use std::sync::Arc;

use draftsmith_core::api::{CreateRun, RunBudget};
use draftsmith_core::time::Period;
use draftsmith_core::{Timestamp, UserId};
use draftsmith_store::{Store, StoreError, UsageFilter};

/// Where the runner reads the time: the wall clock, or a test's.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The wall clock.
pub fn wall_clock() -> Clock {
    Arc::new(Timestamp::now)
}

/// The configured budgets; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budgets {
    /// A run's cost limit in micro-dollars when its request names none.
    pub run_max_cost: Option<u64>,
    /// The largest cost limit a request may ask for.
    pub run_max_cost_ceiling: Option<u64>,
    /// A run's token limit when its request names none.
    pub run_max_tokens: Option<u64>,
    /// The largest token limit a request may ask for.
    pub run_max_tokens_ceiling: Option<u64>,
    /// What one user's runs may cost per UTC day, in micro-dollars.
    pub user_daily_cost: Option<u64>,
    /// What one user's runs may cost per calendar month (UTC), in micro-dollars.
    pub user_monthly_cost: Option<u64>,
}

/// Why a run may not start for budget reasons.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The request asked for more than the ceiling.
    #[error("{field} may be at most {ceiling}")]
    AboveCeiling {
        /// `max_cost` or `max_tokens`.
        field: &'static str,
        /// The configured ceiling.
        ceiling: u64,
    },
    /// The user's budget for the period is spent.
    #[error("the {budget} budget of {limit} micro-dollars is spent ({spent}); it resets at {}", resets_at.to_rfc3339())]
    Spent {
        /// `user_daily` or `user_monthly`.
        budget: &'static str,
        /// Its limit in micro-dollars.
        limit: u64,
        /// Spent in the period so far.
        spent: u64,
        /// When the period ends.
        resets_at: Timestamp,
    },
    /// The store could not say what was spent.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request's limit: its own within the ceiling, else the default (capped too).
fn limit(
    asked: Option<u64>,
    default: Option<u64>,
    ceiling: Option<u64>,
    field: &'static str,
) -> Result<Option<u64>, BudgetError> {
    match (asked, ceiling) {
        (Some(asked), Some(ceiling)) if asked > ceiling => {
            Err(BudgetError::AboveCeiling { field, ceiling })
        }
        (Some(asked), _) => Ok(Some(asked)),
        (None, Some(ceiling)) => Ok(Some(default.map_or(ceiling, |d| d.min(ceiling)))),
        (None, None) => Ok(default),
    }
}

impl Budgets {
    /// The budget of a run created by `request`.
    pub fn for_run(&self, request: &CreateRun) -> Result<RunBudget, BudgetError> {
        Ok(RunBudget {
            max_cost: limit(
                request.max_cost,
                self.run_max_cost,
                self.run_max_cost_ceiling,
                "max_cost",
            )?,
            max_tokens: limit(
                request.max_tokens,
                self.run_max_tokens,
                self.run_max_tokens_ceiling,
                "max_tokens",
            )?,
        })
    }

    /// Refuses when `user` spent their daily or monthly budget by `now`.
    pub async fn check_user(
        &self,
        store: &dyn Store,
        user: &UserId,
        now: Timestamp,
    ) -> Result<(), BudgetError> {
        let periods = [
            ("user_daily", Period::Day, self.user_daily_cost),
            ("user_monthly", Period::Month, self.user_monthly_cost),
        ];
        for (budget, period, limit) in periods {
            let Some(limit) = limit else { continue };
            let (from, to) = now.period(period);
            let filter = UsageFilter {
                user: Some(user.clone()),
                from: Some(from),
                to: Some(to),
            };
            let spent = store.usage_total(&filter).await?.cost_micro_usd;
            if spent >= limit {
                return Err(BudgetError::Spent {
                    budget,
                    limit,
                    spent,
                    resets_at: to,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_request_asks_within_the_ceiling_or_gets_the_default() {
        assert_eq!(limit(None, None, None, "f").unwrap(), None);
        assert_eq!(limit(None, Some(5), None, "f").unwrap(), Some(5));
        assert_eq!(limit(None, Some(50), Some(10), "f").unwrap(), Some(10));
        assert_eq!(limit(None, None, Some(10), "f").unwrap(), Some(10));
        assert_eq!(limit(Some(7), Some(5), Some(10), "f").unwrap(), Some(7));
        assert!(matches!(
            limit(Some(11), None, Some(10), "max_cost"),
            Err(BudgetError::AboveCeiling {
                field: "max_cost",
                ceiling: 10
            })
        ));
    }
}
