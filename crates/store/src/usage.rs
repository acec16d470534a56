//! The usage aggregate: every model call's token counts and cost, recorded with the run's
//! running totals in the transaction that appends the run's next events, and the sums
//! `GET /admin/usage` and the budgets read.

use async_trait::async_trait;
use draftsmith_core::api::{ModelCallRecord, UsageGroup, UsageRow};
use draftsmith_core::{AppId, RunId, Timestamp, Usage, UsageTotals, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::SqlStore;
use crate::error::{Result, StoreError};
use crate::sql;
use crate::usage_columns::{self, CALL_SUMS, column};

/// Microseconds in a UTC day, for grouping by day.
const DAY_MICROS: i64 = 86_400_000_000;

/// One finished model call to record.
#[derive(Debug, Clone)]
pub struct NewModelCall {
    /// The run it belongs to.
    pub run: RunId,
    /// The run's app.
    pub app: AppId,
    /// Who started the run.
    pub user: UserId,
    /// `provider/model`.
    pub model: String,
    /// The run's step it answered.
    pub step: u64,
    /// Its counts, reported or estimated.
    pub usage: Usage,
    /// Its cost in micro-dollars.
    pub cost_micro_usd: u64,
    /// The counts are an estimate: the provider reported none.
    pub estimated: bool,
    /// Its wall time.
    pub ms: u64,
    /// When it finished.
    pub at: Timestamp,
}

/// Which calls a usage sum covers.
#[derive(Debug, Clone, Default)]
pub struct UsageFilter {
    /// Only this user's runs; everyone's when `None`.
    pub user: Option<UserId>,
    /// Calls finished at or after this instant.
    pub from: Option<Timestamp>,
    /// Calls finished before this instant.
    pub to: Option<Timestamp>,
}

/// Model calls and their sums.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// A run's model calls, in order.
    async fn model_calls(&self, run: RunId) -> Result<Vec<ModelCallRecord>>;
    /// Usage summed by `group`, largest cost first.
    async fn usage_by(&self, group: UsageGroup, filter: &UsageFilter) -> Result<Vec<UsageRow>>;
    /// Usage summed over every call `filter` covers.
    async fn usage_total(&self, filter: &UsageFilter) -> Result<UsageTotals>;
}

/// The SQL that names a call's group.
fn group_key(group: UsageGroup) -> String {
    match group {
        UsageGroup::User => "user_id".into(),
        UsageGroup::App => "app_id".into(),
        UsageGroup::Model => "model".into(),
        UsageGroup::Day => format!("CAST(created_at / {DAY_MICROS} AS TEXT)"),
    }
}

/// `WHERE` of `filter` over parameters `$1` (user, '' for all), `$2` (from), `$3` (to).
const FILTERED: &str = "WHERE ($1 = '' OR user_id = $1) AND created_at >= $2 AND created_at < $3";

fn bind_filter<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    filter: &UsageFilter,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(
            filter
                .user
                .as_ref()
                .map(|u| u.0.clone())
                .unwrap_or_default(),
        )
        .bind(filter.from.map_or(i64::MIN, Timestamp::as_micros))
        .bind(filter.to.map_or(i64::MAX, Timestamp::as_micros))
}

/// A day number since the epoch as `YYYY-MM-DD`.
fn day_name(raw: &str) -> String {
    let Ok(day) = raw.parse::<i64>() else {
        return raw.to_owned();
    };
    let rfc = Timestamp::from_micros(day * DAY_MICROS).to_rfc3339();
    rfc.get(..10).unwrap_or(&rfc).to_owned()
}

/// Records one model call in `tx` and adds it to its run's totals (the run's events are
/// appended in the same transaction, [`crate::RunStore::append_events`]).
pub(crate) async fn record_in_tx(tx: &mut sql::Tx, call: &NewModelCall) -> Result<()> {
    let calls = std::slice::from_ref(call);
    let statement = format!(
        "UPDATE runs SET {} WHERE id = $1 RETURNING {}",
        usage_columns::add_to_run(2),
        usage_columns::RUN_COLUMNS
    );
    let mut query = sqlx::query(&statement).bind(call.run.to_string());
    for value in added_by(calls) {
        query = query.bind(value);
    }
    let row = query
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("run"))?;
    let totals = usage_columns::totals(&row)?;
    insert_calls(tx, calls, column(totals.model_calls)).await
}

/// What `calls` add to their run's usage columns, in [`usage_columns::RUN_COLUMNS`]
/// order.
pub(crate) fn added_by(calls: &[NewModelCall]) -> [i64; 8] {
    let mut sums = [0u64; 8];
    for call in calls {
        let u = call.usage;
        let counts = [
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens,
            u.reasoning_tokens,
            call.cost_micro_usd,
            1,
            u64::from(call.estimated),
        ];
        for (sum, count) in sums.iter_mut().zip(counts) {
            *sum = sum.saturating_add(count);
        }
    }
    sums.map(column)
}

/// Writes `calls` (already added to their run's totals) numbered from `first_seq`, in
/// multi-row statements.
pub(crate) async fn insert_calls(
    tx: &mut sql::Tx,
    calls: &[NewModelCall],
    first_seq: i64,
) -> Result<()> {
    let numbered: Vec<(i64, &NewModelCall)> = (first_seq..).zip(calls).collect();
    let marks = sql::Marks::of(tx);
    for chunk in numbered.chunks(sql::CHUNK) {
        let statement = format!(
            "INSERT INTO model_calls (run_id, seq, app_id, user_id, model, step, input_tokens, \
               output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, \
               cost_micro_usd, estimated, ms, created_at) VALUES {}",
            marks.rows(chunk.len(), 15)
        );
        let mut query = sqlx::query(&statement);
        for (seq, call) in chunk {
            let u = call.usage;
            query = query
                .bind(call.run.to_string())
                .bind(*seq)
                .bind(call.app.to_string())
                .bind(call.user.0.clone())
                .bind(call.model.clone())
                .bind(column(call.step))
                .bind(column(u.input_tokens))
                .bind(column(u.output_tokens))
                .bind(column(u.cache_read_tokens))
                .bind(column(u.cache_write_tokens))
                .bind(column(u.reasoning_tokens))
                .bind(column(call.cost_micro_usd))
                .bind(i64::from(call.estimated))
                .bind(column(call.ms))
                .bind(call.at.as_micros());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

fn call_from_row(row: &AnyRow) -> Result<ModelCallRecord> {
    let count = |name: &str| -> Result<u64> {
        let value: i64 = row.try_get(name)?;
        u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{name} {value}")))
    };
    Ok(ModelCallRecord {
        seq: count("seq")?,
        model: row.try_get("model")?,
        step: count("step")?,
        usage: Usage {
            input_tokens: count("input_tokens")?,
            output_tokens: count("output_tokens")?,
            cache_read_tokens: count("cache_read_tokens")?,
            cache_write_tokens: count("cache_write_tokens")?,
            reasoning_tokens: count("reasoning_tokens")?,
        },
        cost_micro_usd: count("cost_micro_usd")?,
        estimated: count("estimated")? == 1,
        ms: count("ms")?,
        created_at: sql::time(row, "created_at")?,
    })
}

#[async_trait]
impl UsageStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(run = %run))]
    async fn model_calls(&self, run: RunId) -> Result<Vec<ModelCallRecord>> {
        let rows = sqlx::query(
            "SELECT seq, model, step, input_tokens, output_tokens, cache_read_tokens, \
               cache_write_tokens, reasoning_tokens, cost_micro_usd, estimated, ms, created_at \
             FROM model_calls WHERE run_id = $1 ORDER BY seq",
        )
        .bind(run.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(call_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(group = ?group))]
    async fn usage_by(&self, group: UsageGroup, filter: &UsageFilter) -> Result<Vec<UsageRow>> {
        let key = group_key(group);
        let statement = format!(
            "SELECT {key} AS group_key, CAST(COUNT(DISTINCT run_id) AS BIGINT) AS runs, {CALL_SUMS} \
             FROM model_calls {FILTERED} GROUP BY {key} \
             ORDER BY usage_cost_micro_usd DESC, group_key"
        );
        let rows = bind_filter(sqlx::query(&statement), filter)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let raw: String = row.try_get("group_key")?;
                let runs: i64 = row.try_get("runs")?;
                Ok(UsageRow {
                    key: match group {
                        UsageGroup::Day => day_name(&raw),
                        _ => raw,
                    },
                    runs: u64::try_from(runs).unwrap_or_default(),
                    totals: usage_columns::totals(row)?,
                })
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn usage_total(&self, filter: &UsageFilter) -> Result<UsageTotals> {
        let statement = format!("SELECT {CALL_SUMS} FROM model_calls {FILTERED}");
        let row = bind_filter(sqlx::query(&statement), filter)
            .fetch_one(&self.pool)
            .await?;
        usage_columns::totals(&row)
    }
}
