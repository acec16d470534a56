//! A store on a throwaway database, and the records most tests start from.

use draftsmith_core::api::Run;
use draftsmith_core::{AppId, DraftPath, EngineKind, InstanceId, Timestamp, UserId};
use draftsmith_store::prelude::*;
use draftsmith_store::{FileChange, NewApp, NewRun, SqlStore};
use draftsmith_testkit::{StoreKind, TestDb};

/// A migrated store; its database lives as long as this value.
pub struct Fixture {
    pub store: SqlStore,
    pub db: TestDb,
}

impl Fixture {
    pub async fn new(kind: StoreKind) -> Self {
        let db = TestDb::new(kind).await;
        let store = SqlStore::connect(&db.url).await.unwrap();
        Self { store, db }
    }

    /// Ends `run` as `alice` cancelling it (its app may start another).
    pub async fn cancel(&self, run: draftsmith_core::RunId) {
        let cancelled = draftsmith_core::EventBody::RunCancelled {
            by: "alice".into(),
            usage: None,
        };
        self.store
            .append_event(run, cancelled, vec![])
            .await
            .unwrap();
    }

    /// An app owned by `alice` with `index.html` = `v1` at revision 1.
    pub async fn app(&self) -> AppId {
        self.app_named("Demo").await
    }

    pub async fn app_named(&self, name: &str) -> AppId {
        let new = NewApp {
            name: name.into(),
            slug: "demo".into(),
            template: "vite-react".into(),
            owner: alice(),
            files: vec![(path("index.html"), b"v1".to_vec())],
        };
        self.store.create_app(new).await.unwrap().id
    }

    /// `alice` writes `changes` on `expected`.
    pub async fn write(
        &self,
        app: AppId,
        expected: Option<i64>,
        changes: Vec<FileChange>,
    ) -> draftsmith_store::Result<draftsmith_store::DraftWrite> {
        self.store
            .write_draft(app, expected, changes, &alice())
            .await
    }

    /// Starts a run of `alice`'s on `app`, in a new chat session.
    pub async fn run(&self, app: AppId) -> draftsmith_store::Result<Run> {
        self.store.create_run(new_run(app, "make it blue")).await
    }
}

pub fn alice() -> UserId {
    UserId("alice".into())
}

pub fn path(raw: &str) -> DraftPath {
    DraftPath::parse(raw).unwrap()
}

pub fn put(raw: &str, content: &str) -> FileChange {
    FileChange {
        path: path(raw),
        content: Some(content.as_bytes().to_vec()),
    }
}

pub fn delete(raw: &str) -> FileChange {
    FileChange {
        path: path(raw),
        content: None,
    }
}

pub fn new_run(app: AppId, input: &str) -> NewRun {
    NewRun {
        app,
        user: alice(),
        chat_session: None,
        new_chat_id: None,
        engine: EngineKind::Native,
        requested_model_id: "auto".into(),
        resolved_model_id: "demo".into(),
        input: input.into(),
        owner: InstanceId::new(),
        lease_until: Timestamp::from_micros(Timestamp::now().as_micros() + 60_000_000),
        input_params: serde_json::json!({}),
        attachments: Vec::new(),
        seen_revision: None,
    }
}

/// The paths of a manifest with their contents, read back through the blob store.
pub async fn files(
    store: &SqlStore,
    manifest: &draftsmith_store::Manifest,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in &manifest.files {
        let bytes = store.blob(&file.sha256).await.unwrap();
        out.push((file.path.clone(), String::from_utf8(bytes).unwrap()));
    }
    out
}

pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}
