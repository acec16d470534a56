//! The leaf under every aggregate: statements, scripts and the decoding of column values
//! (transactions are [`crate::writer`]'s). It imports nothing from this crate but the
//! error type and the transaction, so any module may use it.

use draftsmith_core::{BlobHash, Timestamp};
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row};

use crate::error::{Result, StoreError};

pub(crate) use crate::writer::Tx;

/// A statement with its parameters bound so far.
pub(crate) type Query<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

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

    /// The mark of parameter number `n`.
    pub(crate) fn mark(self, n: usize) -> String {
        self.list(n, 1)
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

/// A value bound to one of a [`Script`]'s marks.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(Some(value))
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(Some(value.to_owned()))
    }
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Self {
        Self::Text(value)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

impl From<Option<i64>> for Value {
    fn from(value: Option<i64>) -> Self {
        Self::Int(value)
    }
}

/// Binds `value` to `query`'s next mark.
pub(crate) fn bind(query: Query<'_>, value: Value) -> Query<'_> {
    match value {
        Value::Text(text) => query.bind(text),
        Value::Int(int) => query.bind(int),
    }
}

/// Statements that run in order in one transaction, each written with its database's
/// [`Marks`] and its values in their order. On SQLite they go as one script in a single
/// call: each call crosses to the connection's own thread and back, which costs more than
/// most of these statements (60 µs a call on the 2-core machine the benchmarks run on, of
/// a 50-file write's 1.3 ms), and a script's anonymous marks bind in order across its
/// statements. PostgreSQL runs one statement per round trip.
#[must_use = "a script does nothing until it runs"]
pub(crate) struct Script {
    marks: Marks,
    statements: Vec<(String, Vec<Value>)>,
}

impl Script {
    /// An empty script for the database behind `conn`.
    pub(crate) fn new(conn: &sqlx::AnyConnection) -> Self {
        Self {
            marks: Marks::of(conn),
            statements: Vec::new(),
        }
    }

    /// How the statements mark their parameters.
    pub(crate) fn marks(&self) -> Marks {
        self.marks
    }

    /// Adds a statement and the values of its marks.
    pub(crate) fn push(&mut self, statement: String, values: Vec<Value>) {
        self.statements.push((statement, values));
    }

    /// Runs the statements in `tx`, stopping at the first that fails (the transaction is
    /// then the caller's to drop).
    pub(crate) async fn run(self, tx: &mut Tx) -> Result<()> {
        if self.marks == Marks::Numbered {
            for (statement, values) in self.statements {
                let query = values.into_iter().fold(sqlx::query(&statement), bind);
                query.execute(&mut **tx).await?;
            }
            return Ok(());
        }
        if self.statements.is_empty() {
            return Ok(());
        }
        let (statements, values): (Vec<String>, Vec<Vec<Value>>) =
            self.statements.into_iter().unzip();
        let script = statements.join(";\n");
        let query = values
            .into_iter()
            .flatten()
            .fold(sqlx::query(&script), bind);
        query.execute(&mut **tx).await?;
        Ok(())
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use draftsmith_testkit::StoreKind;
    use sqlx::Row;

    use super::*;
    use crate::SqlStore;
    use crate::db::scratch_store;

    /// Adds to `script` an insert of `rows` into `scratch`.
    fn insert(script: &mut Script, rows: &[(&str, i64, Option<&str>)]) {
        let sql = format!(
            "INSERT INTO scratch (name, n, note) VALUES {}",
            script.marks().rows(rows.len(), 3)
        );
        let values = rows
            .iter()
            .flat_map(|(name, n, note)| {
                [(*name).into(), (*n).into(), note.map(str::to_owned).into()]
            })
            .collect();
        script.push(sql, values);
    }

    async fn scratch(store: &SqlStore) -> Vec<(String, i64, Option<String>)> {
        sqlx::query("SELECT name, n, note FROM scratch ORDER BY name")
            .fetch_all(&mut *store.writer.acquire().await.unwrap())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("name"), r.get("n"), r.get("note")))
            .collect()
    }

    /// A script's statements take their values in order, whatever each statement's count,
    /// and land together; when one fails, the transaction holds the error and, dropped,
    /// keeps nothing of the statements before it.
    #[tokio::test]
    async fn a_script_binds_in_order_and_lands_whole_or_not_at_all() {
        for kind in [StoreKind::Sqlite, StoreKind::Postgres] {
            let (_db, store) =
                scratch_store(kind, "name TEXT PRIMARY KEY, n BIGINT, note TEXT").await;

            let mut tx = store.writer.begin().await.unwrap();
            let mut script = Script::new(&tx);
            insert(&mut script, &[("a", 1, Some("one")), ("b", 2, None)]);
            let marks = script.marks();
            script.push(
                format!(
                    "UPDATE scratch SET note = {} WHERE name = {}",
                    marks.mark(1),
                    marks.mark(2)
                ),
                vec!["two".into(), "b".into()],
            );
            insert(&mut script, &[("c", 3, None)]);
            script.run(&mut tx).await.unwrap();
            tx.commit().await.unwrap();
            let landed = vec![
                ("a".to_owned(), 1, Some("one".to_owned())),
                ("b".to_owned(), 2, Some("two".to_owned())),
                ("c".to_owned(), 3, None),
            ];
            assert_eq!(scratch(&store).await, landed, "{kind:?}");

            let mut tx = store.writer.begin().await.unwrap();
            let mut script = Script::new(&tx);
            insert(&mut script, &[("d", 4, None)]);
            // `a` exists: the key refuses the row.
            insert(&mut script, &[("e", 5, None), ("a", 6, None)]);
            assert!(script.run(&mut tx).await.is_err(), "{kind:?}");
            drop(tx);
            assert_eq!(scratch(&store).await, landed, "{kind:?}");
            store.close().await;
        }
    }
}
