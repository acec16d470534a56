//! [`SqlStore`]: the one SQL implementation of [`Store`]. Its statements are written in the
//! dialect SQLite and PostgreSQL share (`$n` parameters, `ON CONFLICT`, `RETURNING`), so
//! both databases run the same code; each keeps its own migrations.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use draftsmith_core::api::{
    App, ChatMessage, ChatRole, ChatSession, Checkpoint, CheckpointKind, FilesChanged,
    MessageStatus, Run, StorageStats,
};
use draftsmith_core::{
    AppId, BlobHash, ChatSessionId, Diagnostic, DraftPath, EventBody, InstanceId, Role, RunEvent,
    RunId, Timestamp, UserId,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::blobs::{BlobStore, DbBlobs};
use crate::{
    DraftWrite, FileChange, Manifest, NewApp, NewCheckpoint, NewRun, Principal, Result, Store,
    StoreError, StoredResource, chat, checkpoints, resources, runs,
};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, one instance.
    Sqlite,
    /// Shared by any number of instances.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The SQL store over a connection pool.
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    backend: Backend,
    blobs: DbBlobs,
}

impl SqlStore {
    /// Opens (creating when missing) the SQLite file at `path` in WAL mode and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url).await
    }

    /// Connects to `url` (`sqlite://…` or `postgres://…`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                format!("unsupported database url scheme in {url:?}").into(),
            )));
        };
        let options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10));
        let options = match backend {
            Backend::Sqlite => options.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets readers proceed while one writer commits; the busy timeout
                    // makes concurrent writers wait instead of failing.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            }),
            Backend::Postgres => options,
        };
        let pool = options.connect(url).await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Self {
            blobs: DbBlobs::new(pool.clone()),
            pool,
            backend,
        })
    }

    /// Closes the pool, waiting for connections to return.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

const APP_COLUMNS: &str = "id, slug, name, template, owner_user_id, selected_agent_id, \
                           draft_revision, created_at, updated_at";

pub(crate) fn app_from_row(row: &AnyRow) -> Result<App> {
    let id: String = row.try_get("id")?;
    Ok(App {
        id: id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("app id {id:?}")))?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        template: row.try_get("template")?,
        owner_user_id: UserId(row.try_get("owner_user_id")?),
        selected_agent_id: row.try_get("selected_agent_id")?,
        draft_revision: row.try_get("draft_revision")?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        updated_at: Timestamp::from_micros(row.try_get("updated_at")?),
    })
}

fn principal_from_row(row: &AnyRow) -> Result<Principal> {
    let role: String = row.try_get("role")?;
    Ok(Principal {
        user_id: UserId(row.try_get("user_id")?),
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role:?}")))?,
    })
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_token(&self, token_hash: &str) -> Result<Option<Principal>> {
        let row = sqlx::query("SELECT user_id, role FROM auth_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(principal_from_row).transpose()
    }

    async fn count_tokens(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM auth_tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

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

    async fn delete_web_session(&self, hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE session_hash = $1")
            .bind(hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_app(&self, new: NewApp) -> Result<App> {
        crate::drafts::create_app(self, new).await
    }

    async fn app(&self, id: AppId) -> Result<App> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("app"))?;
        app_from_row(&row)
    }

    async fn apps(&self, owner: Option<&UserId>) -> Result<Vec<App>> {
        let rows = match owner {
            Some(owner) => {
                sqlx::query(&format!(
                    "SELECT {APP_COLUMNS} FROM apps WHERE owner_user_id = $1 \
                     ORDER BY created_at DESC, id"
                ))
                .bind(&owner.0)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {APP_COLUMNS} FROM apps ORDER BY created_at DESC, id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(app_from_row).collect()
    }

    async fn draft(&self, app: AppId) -> Result<Manifest> {
        crate::drafts::current_manifest(&self.pool, app).await
    }

    async fn manifest_at(&self, app: AppId, revision: i64) -> Result<Manifest> {
        crate::drafts::manifest_at(&self.pool, app, revision).await
    }

    async fn read_file(
        &self,
        app: AppId,
        path: &DraftPath,
    ) -> Result<(i64, draftsmith_core::api::DraftFile, Vec<u8>)> {
        crate::drafts::read_file(self, app, path).await
    }

    async fn write_draft(
        &self,
        app: AppId,
        expected: Option<i64>,
        changes: Vec<FileChange>,
        author: &UserId,
    ) -> Result<DraftWrite> {
        crate::drafts::write_draft(self, app, expected, changes, author).await
    }

    async fn land_run(&self, landing: crate::Landing) -> Result<crate::Landed> {
        crate::landing::land(self, landing).await
    }

    async fn create_run(&self, new: NewRun) -> Result<Run> {
        runs::create_run(&self.pool, new).await
    }

    async fn run(&self, id: RunId) -> Result<Run> {
        runs::run(&self.pool, id).await
    }

    async fn runs(&self, app: AppId, limit: i64, before: Option<(i64, RunId)>) -> Result<Vec<Run>> {
        runs::runs(&self.pool, app, limit, before).await
    }

    async fn active_run(&self, app: AppId) -> Result<Option<RunId>> {
        runs::active_run(&self.pool, app).await
    }

    async fn append_event(
        &self,
        run: RunId,
        body: EventBody,
        diagnostics: Vec<Diagnostic>,
    ) -> Result<RunEvent> {
        runs::append_event(&self.pool, run, body, diagnostics).await
    }

    async fn events_after(&self, run: RunId, after: i64, limit: i64) -> Result<Vec<RunEvent>> {
        runs::events_after(&self.pool, run, after, limit).await
    }

    async fn set_run_timing(
        &self,
        run: RunId,
        timing: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        runs::set_timing(&self.pool, run, timing).await
    }

    async fn request_cancel(&self, run: RunId, by: &UserId) -> Result<()> {
        runs::request_cancel(&self.pool, run, by).await
    }

    async fn runs_to_cancel(&self, owner: InstanceId) -> Result<Vec<(RunId, String)>> {
        runs::runs_to_cancel(&self.pool, owner).await
    }

    async fn renew_leases(
        &self,
        owner: InstanceId,
        runs: &[RunId],
        until: Timestamp,
    ) -> Result<()> {
        runs::renew_leases(&self.pool, owner, runs, until).await
    }

    async fn orphaned_runs(
        &self,
        previous_life: Option<InstanceId>,
        now: Timestamp,
    ) -> Result<Vec<RunId>> {
        runs::orphaned_runs(&self.pool, previous_life, now).await
    }

    async fn chat_session(&self, id: ChatSessionId) -> Result<ChatSession> {
        chat::session(&self.pool, id).await
    }

    async fn chat_sessions(&self, app: AppId, user: &UserId) -> Result<Vec<ChatSession>> {
        chat::sessions(&self.pool, app, user).await
    }

    async fn chat_messages(&self, session: ChatSessionId) -> Result<Vec<ChatMessage>> {
        chat::messages(&self.pool, session).await
    }

    async fn add_chat_message(
        &self,
        session: ChatSessionId,
        run: Option<RunId>,
        role: ChatRole,
        content: &str,
        status: MessageStatus,
    ) -> Result<ChatMessage> {
        chat::add_message(&self.pool, session, run, role, content, status).await
    }

    async fn create_checkpoint(&self, new: NewCheckpoint) -> Result<Checkpoint> {
        checkpoints::create(&self.pool, new).await
    }

    async fn checkpoint(&self, id: &str) -> Result<Checkpoint> {
        checkpoints::get(&self.pool, id).await
    }

    async fn checkpoints(
        &self,
        app: AppId,
        limit: i64,
        before: Option<(i64, String)>,
    ) -> Result<Vec<Checkpoint>> {
        checkpoints::list(&self.pool, app, limit, before).await
    }

    async fn run_checkpoint(&self, run: RunId, kind: CheckpointKind) -> Result<Option<Checkpoint>> {
        let row = sqlx::query(
            "SELECT id FROM checkpoints WHERE run_id = $1 AND kind = $2 ORDER BY created_at DESC",
        )
        .bind(run.to_string())
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(
                checkpoints::get(&self.pool, &row.try_get::<String, _>("id")?).await?,
            )),
            None => Ok(None),
        }
    }

    async fn checkpoint_manifest(&self, checkpoint: &Checkpoint) -> Result<Manifest> {
        checkpoints::manifest(&self.pool, checkpoint).await
    }

    async fn changes_between(&self, app: AppId, from: i64, to: i64) -> Result<FilesChanged> {
        checkpoints::changes_between(&self.pool, app, from, to).await
    }

    async fn restore_to(
        &self,
        app: AppId,
        target: &Manifest,
        author: &UserId,
        label: &str,
    ) -> Result<(DraftWrite, Checkpoint)> {
        crate::drafts::restore_to(self, app, target, author, label).await
    }

    async fn put_resource(&self, resource: &StoredResource, create: bool) -> Result<()> {
        resources::put(&self.pool, resource, create).await
    }

    async fn resource(&self, kind: &str, id: &str) -> Result<StoredResource> {
        resources::get(&self.pool, kind, id).await
    }

    async fn resources(&self, kind: &str, owner: Option<&UserId>) -> Result<Vec<StoredResource>> {
        resources::list(&self.pool, kind, owner).await
    }

    async fn delete_resource(&self, kind: &str, id: &str) -> Result<()> {
        resources::delete(&self.pool, kind, id).await
    }

    async fn select_agent(&self, app: AppId, agent: Option<&str>) -> Result<()> {
        resources::select_agent(&self.pool, app, agent).await
    }

    async fn stats(&self) -> Result<StorageStats> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM blobs) AS blobs, \
                    (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs) AS blob_bytes, \
                    (SELECT COUNT(*) FROM apps) AS apps",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(StorageStats {
            blobs: row.try_get("blobs")?,
            blob_bytes: row.try_get("blob_bytes")?,
            apps: row.try_get("apps")?,
        })
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }

    fn releases(&self) -> &dyn crate::ReleaseStore {
        self
    }

    async fn blob(&self, hash: &BlobHash) -> Result<Vec<u8>> {
        self.blobs
            .get(hash)
            .await?
            .ok_or(StoreError::NotFound("blob"))
    }
}

/// Starts a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so a concurrent writer waits under the busy timeout instead of
/// failing when a read lock cannot be upgraded.
pub(crate) async fn begin_write(pool: &AnyPool) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
    let sqlite = pool.connect_options().database_url.scheme() == "sqlite";
    Ok(if sqlite {
        pool.begin_with("BEGIN IMMEDIATE").await?
    } else {
        pool.begin().await?
    })
}
