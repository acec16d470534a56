//! The resource aggregate: runtime agents and tools as JSON documents, named uniquely per
//! owner. Their shape is validated above the store.

use async_trait::async_trait;
use draftsmith_core::{Timestamp, UserId};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::SqlStore;
use crate::error::{Result, StoreError};
use crate::sql;

/// One stored agent or tool document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    /// Its id.
    pub id: String,
    /// `agent` or `tool`.
    pub kind: String,
    /// Its owner.
    pub owner: UserId,
    /// Its unique name.
    pub name: String,
    /// The document.
    pub body: Value,
}

/// Agents and tools.
#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Creates (`create`) or replaces an agent or tool document; [`StoreError::NameTaken`]
    /// when the owner has another of that kind and name.
    async fn put_resource(&self, resource: &StoredResource, create: bool) -> Result<()>;
    /// One agent or tool.
    async fn resource(&self, kind: &str, id: &str) -> Result<StoredResource>;
    /// Agents or tools, by name; only `owner`'s when given.
    async fn resources(&self, kind: &str, owner: Option<&UserId>) -> Result<Vec<StoredResource>>;
    /// Deletes an agent or tool.
    async fn delete_resource(&self, kind: &str, id: &str) -> Result<()>;
}

const COLUMNS: &str = "id, kind, owner_user_id, name, body";

fn from_row(row: &AnyRow) -> Result<StoredResource> {
    Ok(StoredResource {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        owner: UserId(row.try_get("owner_user_id")?),
        name: row.try_get("name")?,
        body: sql::json(row, "body")?,
    })
}

/// What a missing resource of `kind` is called.
fn missing(kind: &str) -> StoreError {
    StoreError::NotFound(if kind == "agent" { "agent" } else { "tool" })
}

#[async_trait]
impl ResourceStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(kind = %resource.kind, id = %resource.id, create = create))]
    async fn put_resource(&self, resource: &StoredResource, create: bool) -> Result<()> {
        let now = Timestamp::now().as_micros();
        let body = resource.body.to_string();
        let insert = format!(
            "INSERT INTO runtime_resources ({COLUMNS}, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)"
        );
        let query = if create {
            sqlx::query(&insert)
                .bind(&resource.id)
                .bind(&resource.kind)
                .bind(&resource.owner.0)
                .bind(&resource.name)
        } else {
            sqlx::query(
                "UPDATE runtime_resources SET name = $3, body = $4, updated_at = $5 \
                 WHERE id = $1 AND kind = $2",
            )
            .bind(&resource.id)
            .bind(&resource.kind)
            .bind(&resource.name)
        };
        match query
            .bind(body)
            .bind(now)
            .execute(&mut *self.writer.acquire().await?)
            .await
        {
            Ok(done) if done.rows_affected() == 0 => Err(StoreError::NotFound("resource")),
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::NameTaken(resource.name.clone()))
            }
            Err(err) => Err(err.into()),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(kind = kind, id = id))]
    async fn resource(&self, kind: &str, id: &str) -> Result<StoredResource> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runtime_resources WHERE id = $1 AND kind = $2"
        ))
        .bind(id)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| missing(kind))?;
        from_row(&row)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(kind = kind))]
    async fn resources(&self, kind: &str, owner: Option<&UserId>) -> Result<Vec<StoredResource>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM runtime_resources \
             WHERE kind = $1 AND ($2 = '' OR owner_user_id = $2) ORDER BY name, id"
        ))
        .bind(kind)
        .bind(owner.map(|o| o.0.clone()).unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(kind = kind, id = id))]
    async fn delete_resource(&self, kind: &str, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM runtime_resources WHERE id = $1 AND kind = $2")
            .bind(id)
            .bind(kind)
            .execute(&mut *self.writer.acquire().await?)
            .await?;
        if done.rows_affected() == 0 {
            return Err(missing(kind));
        }
        Ok(())
    }
}
