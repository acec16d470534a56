//! The server started in-process on a real listener at 127.0.0.1:0, optionally with a
//! scripted model registered as provider `mock` (OpenAI-compatible) and `mock-anthropic`.

use std::sync::Arc;
use std::time::Duration;

use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_server::AppState;
use draftsmith_service::Config;
use draftsmith_service::config::ProviderConfig;
use draftsmith_service::startup::{bootstrap_admin, build_state};
use draftsmith_store::{SqlStore, Store};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::{ADMIN_TOKEN, ApiClient, StoreKind, TestDb};

/// A running server; dropping it shuts the server down.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The store it serves.
    pub store: Arc<dyn Store>,
    /// Its state (runner included).
    pub state: AppState,
    /// Its database.
    pub db: TestDb,
    /// The scripted model, when started with one.
    pub model: Option<MockModel>,
    stop: Option<oneshot::Sender<()>>,
    background: CancellationToken,
}

/// A configuration that runs the native engine against `model_base_url` as provider
/// `mock` (and `mock-anthropic`), with a short lease for orphan tests.
pub fn config_for_model(model_base_url: &str) -> Config {
    let mut config = Config::default();
    config.coding_agent.native_enabled = true;
    config.coding_agent.default_engine = Some(draftsmith_core::EngineKind::Native);
    config.coding_agent.run_lease = std::time::Duration::from_secs(2);
    // Verification has its own tests; elsewhere it would only add `npm` time.
    config.coding_agent.verify = false;
    config.models.default = "mock/coder".into();
    config.providers = vec![
        ProviderConfig {
            id: "mock".into(),
            kind: draftsmith_service::config::ProviderKind::OpenAi,
            base_url: model_base_url.into(),
            api_key_env: None,
            models: vec!["coder".into(), "other".into()],
        },
        ProviderConfig {
            id: "mock-anthropic".into(),
            kind: draftsmith_service::config::ProviderKind::Anthropic,
            base_url: model_base_url.into(),
            api_key_env: None,
            models: vec!["claude".into()],
        },
    ];
    config
}

impl TestServer {
    /// A server on a fresh database of `kind` with default settings and no model.
    pub async fn start(kind: StoreKind) -> Self {
        Self::start_with(kind, Config::default()).await
    }

    /// A server whose provider `mock` plays `script` (JSON, see docs/mock-model.md).
    pub async fn with_script(kind: StoreKind, script: &str) -> Self {
        let model = MockModel::start(Script::from_json(script).unwrap())
            .await
            .unwrap();
        let config = config_for_model(&model.base_url());
        let mut server = Self::start_with(kind, config).await;
        server.model = Some(model);
        server
    }

    /// A server on a fresh database with `config`.
    pub async fn start_with(kind: StoreKind, config: Config) -> Self {
        let db = TestDb::new(kind).await;
        Self::start_on(db, config).await
    }

    /// A server on an existing database.
    pub async fn start_on(db: TestDb, mut config: Config) -> Self {
        config.data_dir = db.dir.path().to_path_buf();
        if db.kind == StoreKind::Postgres {
            config.database_url = db.url.clone();
        }
        let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&db.url).await.unwrap());
        bootstrap_admin(store.as_ref(), Some(ADMIN_TOKEN))
            .await
            .unwrap();
        let registry = config.model_registry(&|_| None, None).unwrap();
        let background = CancellationToken::new();
        let state = build_state(&config, store.clone(), registry, background.clone())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(draftsmith_server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            base_url,
            store,
            state,
            db,
            model: None,
            stop: Some(stop),
            background,
        }
    }

    /// The scripted model (panics when the server has none).
    pub fn model(&self) -> &MockModel {
        self.model.as_ref().expect("started without a model")
    }

    /// A client signed in as the bootstrap admin.
    pub fn admin(&self) -> ApiClient {
        ApiClient::new(&self.base_url, Some(ADMIN_TOKEN))
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> ApiClient {
        ApiClient::new(&self.base_url, None)
    }

    /// Stops the server and its runs the way SIGTERM does.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.state.runner.shutdown(Duration::from_secs(10)).await;
        self.background.cancel();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.background.cancel();
    }
}
