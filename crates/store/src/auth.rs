//! The auth aggregate: API tokens and browser sessions, both stored by the hash of their
//! secret. A browser session answers only before it expires.

use async_trait::async_trait;
use draftsmith_core::{Role, Timestamp, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::SqlStore;
use crate::error::Result;
use crate::sql;

/// Who a credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: UserId,
    /// Their role.
    pub role: Role,
}

/// Tokens and browser sessions.
#[async_trait]
pub trait AuthStore: Send + Sync {
    /// Stores a token by its hash (replacing the principal of an existing one).
    async fn insert_token(&self, token_hash: &str, who: &Principal, label: &str) -> Result<()>;
    /// Looks a token up by its hash.
    async fn find_token(&self, token_hash: &str) -> Result<Option<Principal>>;
    /// How many tokens exist (the first start creates one when there are none).
    async fn count_tokens(&self) -> Result<i64>;
    /// Stores a browser session by its hash.
    async fn insert_web_session(
        &self,
        hash: &str,
        who: &Principal,
        expires: Timestamp,
    ) -> Result<()>;
    /// Looks up a browser session that expires after `now`.
    async fn find_web_session(&self, hash: &str, now: Timestamp) -> Result<Option<Principal>>;
    /// Ends a browser session.
    async fn delete_web_session(&self, hash: &str) -> Result<()>;
}

fn principal_from_row(row: &AnyRow) -> Result<Principal> {
    Ok(Principal {
        user_id: UserId(row.try_get("user_id")?),
        role: sql::decode(row, "role", Role::parse)?,
    })
}

#[async_trait]
impl AuthStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %who.user_id.0))]
    async fn insert_token(&self, token_hash: &str, who: &Principal, label: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_tokens (token_hash, user_id, role, label, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (token_hash) DO UPDATE SET user_id = excluded.user_id, role = excluded.role",
        )
        .bind(token_hash)
        .bind(&who.user_id.0)
        .bind(who.role.as_str())
        .bind(label)
        .bind(Timestamp::now().as_micros())
        .execute(&mut *self.writer.acquire().await?)
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        let row = sqlx::query("SELECT user_id, role FROM auth_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(principal_from_row).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn count_tokens(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM auth_tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %who.user_id.0))]
    async fn insert_web_session(
        &self,
        hash: &str,
        who: &Principal,
        expires: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO web_sessions (session_hash, user_id, role, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(hash)
        .bind(&who.user_id.0)
        .bind(who.role.as_str())
        .bind(Timestamp::now().as_micros())
        .bind(expires.as_micros())
        .execute(&mut *self.writer.acquire().await?)
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_web_session(&self, hash: &str, now: Timestamp) -> Result<Option<Principal>> {
        let row = sqlx::query(
            "SELECT user_id, role FROM web_sessions WHERE session_hash = $1 AND expires_at > $2",
        )
        .bind(hash)
        .bind(now.as_micros())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(principal_from_row).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn delete_web_session(&self, hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE session_hash = $1")
            .bind(hash)
            .execute(&mut *self.writer.acquire().await?)
            .await?;
        Ok(())
    }
}
