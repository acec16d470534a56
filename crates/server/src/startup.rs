//! What `serve` does before it accepts requests: open the store and make sure an admin
//! can sign in.

use std::sync::Arc;

use draftsmith_core::{Role, UserId};
use draftsmith_store::{Principal, SqlStore, Store, StoreError};

use crate::auth::hash_secret;
use crate::config::{Config, DatabaseTarget};
use crate::routes::admin::mint_token;

/// Opens the configured database, creating `data_dir` and the SQLite file when needed.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let store = match config.database_target() {
        DatabaseTarget::Sqlite(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Database(sqlx::Error::Configuration(
                        format!("cannot create data directory {}: {e}", dir.display()).into(),
                    ))
                })?;
            }
            SqlStore::open_sqlite(&path).await?
        }
        DatabaseTarget::Url(url) => SqlStore::connect(&url).await?,
    };
    Ok(Arc::new(store))
}

/// The user every bootstrap admin token acts as.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Registers `env_token` as an admin token; without one, creates an admin token when none
/// exists at all and returns it so the caller can print it once.
pub async fn bootstrap_admin(
    store: &dyn Store,
    env_token: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let admin = Principal {
        user_id: UserId(BOOTSTRAP_ADMIN.into()),
        role: Role::Admin,
    };
    if let Some(token) = env_token.map(str::trim).filter(|t| !t.is_empty()) {
        store
            .insert_token(&hash_secret(token), &admin, "DRAFTSMITH_ADMIN_TOKEN")
            .await?;
        return Ok(None);
    }
    if store.count_tokens().await? > 0 {
        return Ok(None);
    }
    let created = mint_token(store, &admin.user_id, Role::Admin, "first start")
        .await
        .map_err(|e| StoreError::Corrupt(format!("cannot mint the first token: {e:?}")))?;
    Ok(Some(created.token))
}
