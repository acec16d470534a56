//! The app aggregate: apps and their drafts. Every write to a draft goes through
//! [`crate::draft_writes`] under the app row's lock.

use async_trait::async_trait;
use draftsmith_core::api::{App, DraftFile};
use draftsmith_core::{AppEvent, AppId, BlobHash, DraftPath, Timestamp, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::app_log;
use crate::blobs::BlobStore;
use crate::db::SqlStore;
use crate::draft_writes;
use crate::drafts::{self, DraftWrite, FileChange, Manifest};
use crate::error::{Result, StoreError};
use crate::sql::{self, Tx};

/// A new app with the template files of its first revision.
#[derive(Debug, Clone)]
pub struct NewApp {
    /// Display name.
    pub name: String,
    /// Wanted slug; a numeric suffix is added when it is taken.
    pub slug: String,
    /// Template id.
    pub template: String,
    /// Creator.
    pub owner: UserId,
    /// Files of revision 1.
    pub files: Vec<(DraftPath, Vec<u8>)>,
}

/// Apps and their drafts.
#[async_trait]
pub trait AppStore: Send + Sync {
    /// Creates an app with its draft at revision 1.
    async fn create_app(&self, new: NewApp) -> Result<App>;
    /// One app.
    async fn app(&self, id: AppId) -> Result<App>;
    /// Apps, newest first; only `owner`'s when given.
    async fn apps(&self, owner: Option<&UserId>) -> Result<Vec<App>>;
    /// Sets or clears an app's selected runtime agent.
    async fn select_agent(&self, app: AppId, agent: Option<&str>) -> Result<()>;
    /// The current manifest.
    async fn draft(&self, app: AppId) -> Result<Manifest>;
    /// The manifest at `revision` where this instance has met it (so without a read),
    /// else the current one: a run starts from its base revision, which is then at
    /// worst behind a draft write its landing merges like any other.
    async fn draft_as_of(&self, app: AppId, revision: i64) -> Result<Manifest>;
    /// The manifest as it was at `revision`.
    async fn manifest_at(&self, app: AppId, revision: i64) -> Result<Manifest>;
    /// One file of the current draft with its content, and the draft's revision.
    async fn read_file(&self, app: AppId, path: &DraftPath) -> Result<(i64, DraftFile, Vec<u8>)>;
    /// Applies `changes` as one new revision. With `expected`, fails with
    /// [`StoreError::RevisionConflict`] unless the draft is still at that revision.
    async fn write_draft(
        &self,
        app: AppId,
        expected: Option<i64>,
        changes: Vec<FileChange>,
        author: &UserId,
    ) -> Result<DraftWrite>;
    /// The app's own events with `seq > after`, in order.
    async fn app_events_after(&self, app: AppId, after: i64, limit: i64) -> Result<Vec<AppEvent>>;
}

/// How many slug suffixes to try before giving up on a name.
const SLUG_ATTEMPTS: usize = 50;

const COLUMNS: &str = "id, slug, name, template, owner_user_id, selected_agent_id, \
                       draft_revision, created_at, updated_at";

fn app_from_row(row: &AnyRow) -> Result<App> {
    Ok(App {
        id: sql::id(row, "id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        template: row.try_get("template")?,
        owner_user_id: UserId(row.try_get("owner_user_id")?),
        selected_agent_id: row.try_get("selected_agent_id")?,
        draft_revision: row.try_get("draft_revision")?,
        created_at: sql::time(row, "created_at")?,
        updated_at: sql::time(row, "updated_at")?,
    })
}

/// Picks `wanted`, or `wanted-2`, `wanted-3`, … whichever is free. The UNIQUE constraint
/// still guards a race between two instances.
async fn free_slug(tx: &mut Tx, wanted: &str) -> Result<String> {
    let rows = sqlx::query("SELECT slug FROM apps WHERE slug = $1 OR slug LIKE $2")
        .bind(wanted)
        .bind(format!("{wanted}-%"))
        .fetch_all(&mut **tx)
        .await?;
    let taken: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>("slug"))
        .collect::<Result<_, _>>()?;
    if !taken.iter().any(|s| s == wanted) {
        return Ok(wanted.to_owned());
    }
    (2..SLUG_ATTEMPTS + 2)
        .map(|n| format!("{wanted}-{n}"))
        .find(|candidate| !taken.contains(candidate))
        .ok_or_else(|| StoreError::Corrupt(format!("no free slug for {wanted:?}")))
}

#[async_trait]
impl AppStore for SqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(slug = %new.slug, files = new.files.len()))]
    async fn create_app(&self, new: NewApp) -> Result<App> {
        let files: Vec<(String, BlobHash, Vec<u8>)> = new
            .files
            .into_iter()
            .map(|(path, content)| (path.into_string(), BlobHash::of(&content), content))
            .collect();
        let refs: Vec<(&BlobHash, &[u8])> =
            files.iter().map(|(_, h, c)| (h, c.as_slice())).collect();
        self.blobs.put_many(&refs).await?;
        let sized: Vec<(String, BlobHash, i64)> = files
            .into_iter()
            .map(|(path, hash, content)| (path, hash, content.len() as i64))
            .collect();

        let id = AppId::new();
        let now = Timestamp::now().as_micros();
        let mut tx = self.writer.begin().await?;
        let slug = free_slug(&mut tx, &new.slug).await?;
        sqlx::query(&format!(
            "INSERT INTO apps ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL, 1, $6, $6)"
        ))
        .bind(id.to_string())
        .bind(&slug)
        .bind(&new.name)
        .bind(&new.template)
        .bind(&new.owner.0)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        draft_writes::first_revision(&mut tx, id, &sized, &new.owner, now).await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM apps WHERE id = $1"))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let app = app_from_row(&row)?;
        tx.commit().await?;
        let mut files: Vec<DraftFile> = sized
            .into_iter()
            .map(|(path, sha256, size)| DraftFile { path, size, sha256 })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let first = Manifest { revision: 1, files };
        self.manifests.keep(id, &first);
        Ok(app)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %id))]
    async fn app(&self, id: AppId) -> Result<App> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM apps WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("app"))?;
        app_from_row(&row)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(owner = owner.map(|o| o.0.as_str())))]
    async fn apps(&self, owner: Option<&UserId>) -> Result<Vec<App>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM apps WHERE ($1 = '' OR owner_user_id = $1) \
             ORDER BY created_at DESC, id"
        ))
        .bind(owner.map(|o| o.0.clone()).unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(app_from_row).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app, agent = ?agent))]
    async fn select_agent(&self, app: AppId, agent: Option<&str>) -> Result<()> {
        let done =
            sqlx::query("UPDATE apps SET selected_agent_id = $2, updated_at = $3 WHERE id = $1")
                .bind(app.to_string())
                .bind(agent.map(str::to_owned))
                .bind(Timestamp::now().as_micros())
                .execute(&mut *self.writer.acquire().await?)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("app"));
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app))]
    async fn draft(&self, app: AppId) -> Result<Manifest> {
        let manifest = drafts::current_manifest(&self.pool, app).await?;
        self.manifests.keep(app, &manifest);
        Ok(manifest)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app, revision = revision))]
    async fn draft_as_of(&self, app: AppId, revision: i64) -> Result<Manifest> {
        match self.manifests.get(app, revision) {
            Some(manifest) => Ok(manifest),
            None => self.draft(app).await,
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app, revision = revision))]
    async fn manifest_at(&self, app: AppId, revision: i64) -> Result<Manifest> {
        drafts::manifest_at(&self.pool, app, revision).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app, path = path.as_str()))]
    async fn read_file(&self, app: AppId, path: &DraftPath) -> Result<(i64, DraftFile, Vec<u8>)> {
        drafts::read_file(&self.pool, app, path).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(app = %app, expected = ?expected, changes = changes.len()))]
    async fn write_draft(
        &self,
        app: AppId,
        expected: Option<i64>,
        changes: Vec<FileChange>,
        author: &UserId,
    ) -> Result<DraftWrite> {
        let wanted = draft_writes::store_changes(&self.blobs, changes).await?;
        let mut tx = self.writer.begin().await?;
        let result = draft_writes::write_in_tx(&mut tx, app, expected, &wanted, author).await?;
        tx.commit().await?;
        Ok(result)
    }

    #[tracing::instrument(level = "trace", skip_all, fields(app = %app, after = after))]
    async fn app_events_after(&self, app: AppId, after: i64, limit: i64) -> Result<Vec<AppEvent>> {
        app_log::events_after(&self.pool, app, after, limit).await
    }
}
