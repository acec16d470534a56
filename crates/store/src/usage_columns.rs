//! The usage columns: the eight totals a run row carries (`usage_…`) and a group of model
//! calls sums to, decoded in one place for runs, terminal events and reports.

use draftsmith_core::UsageTotals;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;

/// The run columns holding its totals, in [`UsageTotals`] field order.
pub(crate) const RUN_COLUMNS: &str = "usage_input_tokens, usage_output_tokens, \
    usage_cache_read_tokens, usage_cache_write_tokens, usage_reasoning_tokens, \
    usage_cost_micro_usd, usage_model_calls, usage_estimated_calls";

/// `SET` assignments adding parameters `$first..$first+7` to [`RUN_COLUMNS`], in order (the
/// values [`crate::usage::added_by`] returns).
pub(crate) fn add_to_run(first: usize) -> String {
    RUN_COLUMNS
        .split(", ")
        .enumerate()
        .map(|(i, column)| format!("{column} = {column} + ${}", first + i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sums a group of `model_calls` rows reads as, named like the run columns.
pub(crate) const CALL_SUMS: &str = "CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS usage_input_tokens, \
    CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS usage_output_tokens, \
    CAST(COALESCE(SUM(cache_read_tokens), 0) AS BIGINT) AS usage_cache_read_tokens, \
    CAST(COALESCE(SUM(cache_write_tokens), 0) AS BIGINT) AS usage_cache_write_tokens, \
    CAST(COALESCE(SUM(reasoning_tokens), 0) AS BIGINT) AS usage_reasoning_tokens, \
    CAST(COALESCE(SUM(cost_micro_usd), 0) AS BIGINT) AS usage_cost_micro_usd, \
    CAST(COUNT(*) AS BIGINT) AS usage_model_calls, \
    CAST(COALESCE(SUM(estimated), 0) AS BIGINT) AS usage_estimated_calls";

fn count(row: &AnyRow, column: &str) -> Result<u64> {
    let value: i64 = row.try_get(column)?;
    Ok(u64::try_from(value).unwrap_or_default())
}

/// The totals of a row selecting [`RUN_COLUMNS`] or [`CALL_SUMS`].
pub(crate) fn totals(row: &AnyRow) -> Result<UsageTotals> {
    Ok(UsageTotals {
        input_tokens: count(row, "usage_input_tokens")?,
        output_tokens: count(row, "usage_output_tokens")?,
        cache_read_tokens: count(row, "usage_cache_read_tokens")?,
        cache_write_tokens: count(row, "usage_cache_write_tokens")?,
        reasoning_tokens: count(row, "usage_reasoning_tokens")?,
        cost_micro_usd: count(row, "usage_cost_micro_usd")?,
        model_calls: count(row, "usage_model_calls")?,
        estimated_calls: count(row, "usage_estimated_calls")?,
    })
}

/// A count as a column value (counts beyond `i64` saturate).
pub(crate) fn column(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
