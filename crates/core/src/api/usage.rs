//! Token usage and cost: a run's totals (`usage` on a run and on its terminal event) and
//! `GET /admin/usage`, usage summed by user, app, model or day.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;
use crate::model::Usage;
pub use crate::model::UsageTotals;

/// One model call of a run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelCallRecord {
    /// Its number in the run, from 1.
    pub seq: u64,
    /// `provider/model`.
    pub model: String,
    /// The run's step (model turn) it answered, from 0.
    pub step: u64,
    /// Token counts (estimated when `estimated`).
    pub usage: Usage,
    /// Its cost in micro-dollars.
    pub cost_micro_usd: u64,
    /// The provider reported no usage; the counts are draftsmith's estimate.
    pub estimated: bool,
    /// Wall time of the call.
    pub ms: u64,
    /// When it finished.
    pub created_at: Timestamp,
}

/// What `GET /admin/usage` sums by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageGroup {
    /// The user who started the run.
    User,
    /// The app the run worked on.
    App,
    /// The model called.
    Model,
    /// The UTC day the call finished (`YYYY-MM-DD`).
    Day,
}

/// One group of `GET /admin/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageRow {
    /// The user id, app id, model id or `YYYY-MM-DD`.
    pub key: String,
    /// Runs with at least one call in the group.
    pub runs: u64,
    /// The group's sums.
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// `GET /admin/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageReport {
    /// What the rows are grouped by.
    pub group_by: UsageGroup,
    /// Calls finished at or after this instant, when given.
    pub from: Option<Timestamp>,
    /// Calls finished before this instant, when given.
    pub to: Option<Timestamp>,
    /// Whose usage: the caller's user id for a builder, `None` (everyone) for an admin.
    pub user_id: Option<String>,
    /// One row per group, largest cost first.
    pub rows: Vec<UsageRow>,
    /// The sum of the rows.
    pub total: UsageTotals,
}
