//! The leaf under every aggregate: write transactions and the decoding of column values.
//! It imports nothing from this crate but the error type, so any module may use it.

use draftsmith_core::{BlobHash, Timestamp};
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::error::{Result, StoreError};

/// A transaction on either database.
pub(crate) type Tx = Transaction<'static, Any>;

/// A statement with its parameters bound so far.
pub(crate) type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

/// Starts a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so a concurrent writer waits under the busy timeout instead of
/// failing when a read lock cannot be upgraded.
pub(crate) async fn begin_write(pool: &AnyPool) -> Result<Tx> {
    Ok(if is_sqlite(pool) {
        pool.begin_with("BEGIN IMMEDIATE").await?
    } else {
        pool.begin().await?
    })
}

/// Whether `pool` is a SQLite database.
pub(crate) fn is_sqlite(pool: &AnyPool) -> bool {
    pool.connect_options().database_url.scheme() == "sqlite"
}

/// An aggregate of a query's rows as one JSON array (text) of arrays of `columns`, `[]`
/// when there are none, on SQLite or PostgreSQL. sqlx's `Any` driver hands a result over
/// row by row at about 5 µs a row on SQLite (each value copied, converted and its row's
/// columns described again); a read of thousands of rows is one row this way.
pub(crate) fn json_rows(sqlite: bool, columns: &str) -> String {
    if sqlite {
        format!("json_group_array(json_array({columns}))")
    } else {
        format!("COALESCE(json_agg(json_build_array({columns}))::text, '[]')")
    }
}

/// The rows of a [`json_rows`] aggregate, each decoded as `T` (a tuple of its columns).
pub(crate) fn from_json_rows<T: DeserializeOwned>(json: &str) -> Result<Vec<T>> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("aggregated rows: {e}")))
}

/// A stored value that does not read back as what it should be.
fn corrupt(column: &str, raw: &str) -> StoreError {
    StoreError::Corrupt(format!("{column} {raw:?}"))
}

/// A blob hash stored as text (one of a JSON aggregate's, or one kept in another record).
pub(crate) fn blob_hash(raw: &str) -> Result<BlobHash> {
    BlobHash::parse(raw).ok_or_else(|| corrupt("blob_hash", raw))
}

/// A text column read through `parse` (ids, enums, hashes).
pub(crate) fn decode<T>(row: &AnyRow, column: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let raw: String = row.try_get(column)?;
    parse(&raw).ok_or_else(|| corrupt(column, &raw))
}

/// A nullable text column read through `parse`.
pub(crate) fn decode_opt<T>(
    row: &AnyRow,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    let raw: Option<String> = row.try_get(column)?;
    raw.map(|raw| parse(&raw).ok_or_else(|| corrupt(column, &raw)))
        .transpose()
}

/// A text column holding anything with a `FromStr` (the typed ids).
pub(crate) fn id<T: std::str::FromStr>(row: &AnyRow, column: &str) -> Result<T> {
    decode(row, column, |s| s.parse().ok())
}

/// A nullable id column.
pub(crate) fn id_opt<T: std::str::FromStr>(row: &AnyRow, column: &str) -> Result<Option<T>> {
    decode_opt(row, column, |s| s.parse().ok())
}

/// A blob hash column.
pub(crate) fn hash(row: &AnyRow, column: &str) -> Result<BlobHash> {
    decode(row, column, BlobHash::parse)
}

/// A nullable blob hash column.
pub(crate) fn hash_opt(row: &AnyRow, column: &str) -> Result<Option<BlobHash>> {
    decode_opt(row, column, BlobHash::parse)
}

/// A time stored as integer microseconds.
pub(crate) fn time(row: &AnyRow, column: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_micros(row.try_get(column)?))
}

/// A nullable time.
pub(crate) fn time_opt(row: &AnyRow, column: &str) -> Result<Option<Timestamp>> {
    Ok(row
        .try_get::<Option<i64>, _>(column)?
        .map(Timestamp::from_micros))
}

/// A JSON document stored as text.
pub(crate) fn json<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T> {
    let raw: String = row.try_get(column)?;
    serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// A text column holding the wire name of an enum (its serde spelling).
pub(crate) fn wire<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T> {
    let raw: String = row.try_get(column)?;
    serde_json::from_value(serde_json::Value::String(raw.clone()))
        .map_err(|_| corrupt(column, &raw))
}

/// The wire name of an enum's value, as [`wire`] reads it back.
pub(crate) fn wire_name<T: serde::Serialize>(value: &T) -> Result<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        _ => Err(StoreError::Corrupt("a value without a wire name".into())),
    }
}

/// A value written as JSON text.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Rows per multi-row statement: well inside both databases' limits on parameters.
pub(crate) const CHUNK: usize = 400;

/// How a multi-row statement marks its bind parameters. PostgreSQL needs numbered marks
/// (`$1`). SQLite binds a numbered one by searching the statement's list of parameter
/// names, so binding n of them costs n² (a 400-row insert of 7 columns: millions of steps);
/// anonymous `?` marks bind in order with no search. A statement written with these marks
/// uses one kind throughout, its parameters in the order they are bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marks {
    Numbered,
    Anonymous,
}

impl Marks {
    /// The marks of the database behind `conn` (a transaction derefs to it).
    pub(crate) fn of(conn: &sqlx::AnyConnection) -> Self {
        Self::for_sqlite(conn.backend_name().eq_ignore_ascii_case("sqlite"))
    }

    /// The marks of the database behind `pool`.
    pub(crate) fn of_pool(pool: &AnyPool) -> Self {
        Self::for_sqlite(is_sqlite(pool))
    }

    fn for_sqlite(sqlite: bool) -> Self {
        if sqlite {
            Self::Anonymous
        } else {
            Self::Numbered
        }
    }

    /// Marks for the `count` parameters from number `first`, comma-separated.
    pub(crate) fn list(self, first: usize, count: usize) -> String {
        (first..first + count)
            .map(|n| match self {
                Self::Numbered => format!("${n}"),
                Self::Anonymous => "?".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `(…), (…)`: `count` rows of `width` parameters each, numbered from 1.
    pub(crate) fn rows(self, count: usize, width: usize) -> String {
        (0..count)
            .map(|r| format!("({})", self.list(1 + r * width, width)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The bodies of a log's entries with `seq > after`, in order: the rows of `table` (a run's
/// or an app's event log) whose `owner_column` is `owner`.
pub(crate) async fn log_after<T: DeserializeOwned>(
    pool: &AnyPool,
    table: &str,
    owner_column: &str,
    owner: String,
    after: i64,
    limit: i64,
) -> Result<Vec<T>> {
    let rows = sqlx::query(&format!(
        "SELECT body FROM {table} WHERE {owner_column} = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(owner)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|row| json(row, "body")).collect()
}
