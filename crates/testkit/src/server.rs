//! The server started in-process on a real listener at 127.0.0.1:0.

use std::sync::Arc;

use draftsmith_server::startup::bootstrap_admin;
use draftsmith_server::{AppState, Config, Settings};
use draftsmith_store::{SqlStore, Store};
use tokio::sync::oneshot;

use crate::{ADMIN_TOKEN, ApiClient, StoreKind, TestDb};

/// A running server; dropping it shuts the server down.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The store it serves.
    pub store: Arc<dyn Store>,
    /// Its database.
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// A server on a fresh database of `kind` with default settings.
    pub async fn start(kind: StoreKind) -> Self {
        Self::start_with(kind, Config::default()).await
    }

    /// A server on a fresh database with `config`'s settings.
    pub async fn start_with(kind: StoreKind, config: Config) -> Self {
        let db = TestDb::new(kind).await;
        let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&db.url).await.unwrap());
        bootstrap_admin(store.as_ref(), Some(ADMIN_TOKEN))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState {
            store: store.clone(),
            settings: Arc::new(Settings::from(&config)),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(draftsmith_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Self {
            base_url,
            store,
            db,
            stop: Some(stop),
        }
    }

    /// A client signed in as the bootstrap admin.
    pub fn admin(&self) -> ApiClient {
        ApiClient::new(&self.base_url, Some(ADMIN_TOKEN))
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> ApiClient {
        ApiClient::new(&self.base_url, None)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
