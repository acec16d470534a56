//! Runtime agents and tools as JSON documents, named uniquely per owner, and an app's
//! selected agent. Their shape is validated above the store.

use draftsmith_core::{AppId, Timestamp, UserId};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::{Result, StoreError};

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

fn from_row(row: &AnyRow) -> Result<StoredResource> {
    let id: String = row.try_get("id")?;
    let body: String = row.try_get("body")?;
    Ok(StoredResource {
        body: serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("resource {id}: {e}")))?,
        kind: row.try_get("kind")?,
        owner: UserId(row.try_get("owner_user_id")?),
        name: row.try_get("name")?,
        id,
    })
}

pub(crate) async fn put(pool: &AnyPool, resource: &StoredResource, create: bool) -> Result<()> {
    let now = Timestamp::now().as_micros();
    let body = resource.body.to_string();
    let result = if create {
        sqlx::query(
            "INSERT INTO runtime_resources (id, kind, owner_user_id, name, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&resource.id)
        .bind(&resource.kind)
        .bind(&resource.owner.0)
        .bind(&resource.name)
        .bind(body)
        .bind(now)
        .execute(pool)
        .await
    } else {
        sqlx::query("UPDATE runtime_resources SET name = $3, body = $4, updated_at = $5 WHERE id = $1 AND kind = $2")
            .bind(&resource.id)
            .bind(&resource.kind)
            .bind(&resource.name)
            .bind(body)
            .bind(now)
            .execute(pool)
            .await
    };
    match result {
        Ok(done) if done.rows_affected() == 0 => Err(StoreError::NotFound("resource")),
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            Err(StoreError::NameTaken(resource.name.clone()))
        }
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn get(pool: &AnyPool, kind: &str, id: &str) -> Result<StoredResource> {
    let row = sqlx::query("SELECT id, kind, owner_user_id, name, body FROM runtime_resources WHERE id = $1 AND kind = $2")
        .bind(id)
        .bind(kind)
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::NotFound(if kind == "agent" { "agent" } else { "tool" }))?;
    from_row(&row)
}

pub(crate) async fn list(
    pool: &AnyPool,
    kind: &str,
    owner: Option<&UserId>,
) -> Result<Vec<StoredResource>> {
    let rows = sqlx::query(
        "SELECT id, kind, owner_user_id, name, body FROM runtime_resources \
         WHERE kind = $1 AND ($2 = '' OR owner_user_id = $2) ORDER BY name, id",
    )
    .bind(kind)
    .bind(owner.map(|o| o.0.clone()).unwrap_or_default())
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

pub(crate) async fn delete(pool: &AnyPool, kind: &str, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM runtime_resources WHERE id = $1 AND kind = $2")
        .bind(id)
        .bind(kind)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(if kind == "agent" {
            "agent"
        } else {
            "tool"
        }));
    }
    Ok(())
}

pub(crate) async fn select_agent(pool: &AnyPool, app: AppId, agent: Option<&str>) -> Result<()> {
    let done = sqlx::query("UPDATE apps SET selected_agent_id = $2, updated_at = $3 WHERE id = $1")
        .bind(app.to_string())
        .bind(agent.map(str::to_owned))
        .bind(Timestamp::now().as_micros())
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("app"));
    }
    Ok(())
}
