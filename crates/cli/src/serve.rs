//! `serve`, `token create` and `mock-model`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use draftsmith_core::Role;
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_server::routes::admin::{mint_token, validate_user_name};
use draftsmith_service::config::Config;
use draftsmith_service::startup::{bootstrap_admin, build_state, open_store};
use tokio_util::sync::CancellationToken;

/// The built-in demo script: a visible change to either template, made through tools.
pub const DEMO_SCRIPT: &str = include_str!("demo/script.json");

pub async fn serve(
    config_path: Option<PathBuf>,
    mut config: Config,
    demo: bool,
) -> anyhow::Result<()> {
    let store = open_store(&config).await.context("opening the database")?;
    if let Some(token) = bootstrap_admin(store.as_ref(), config.admin_token.as_deref()).await? {
        println!("draftsmith: created the first admin token (shown once, keep it): {token}");
    }
    // The demo model lives as long as the service.
    let demo_model = if demo {
        let script = Script::from_json(DEMO_SCRIPT).context("the built-in demo script")?;
        let model = MockModel::start(script)
            .await
            .context("starting the demo model")?;
        demo_mode(&mut config);
        Some(model)
    } else {
        None
    };
    let env = |k: &str| std::env::var(k).ok();
    let registry =
        config.model_registry(&env, demo_model.as_ref().map(|m| m.base_url()).as_deref())?;
    let stop = CancellationToken::new();
    let state = build_state(&config, store.clone(), registry, stop.clone()).await?;
    let runner = state.runner.clone();
    let demo_url = demo_model.as_ref().map(|m| m.base_url());
    let reload = Reload {
        path: config_path,
        demo_url,
        instance: draftsmith_service::startup::instance_id(&config.data_dir)?,
    };
    spawn_reload_on_sighup(reload, runner.clone(), stop.clone());
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    if demo {
        println!(
            "draftsmith: demo mode: the scripted model is provider `demo`; try a prompt on a new app"
        );
    }
    println!("draftsmith listening on http://{addr}");
    tracing::info!(%addr, store = store.backend().as_str(), "serving");
    draftsmith_server::serve(listener, state, shutdown_signal()).await?;
    runner.shutdown(Duration::from_secs(10)).await;
    stop.cancel();
    drop(demo_model);
    tracing::info!("stopped");
    Ok(())
}

/// What a reload needs besides the file.
struct Reload {
    path: Option<PathBuf>,
    demo_url: Option<String>,
    instance: draftsmith_core::InstanceId,
}

impl Reload {
    /// The configuration read again, with demo mode's choices applied as at start.
    fn apply(&self, runner: &draftsmith_runner::Runner) -> anyhow::Result<()> {
        let env = |k: &str| std::env::var(k).ok();
        let mut config = Config::load(self.path.as_deref(), &env)?;
        if self.demo_url.is_some() {
            demo_mode(&mut config);
        }
        let registry = config.model_registry(&env, self.demo_url.as_deref())?;
        let settings = draftsmith_service::startup::runner_config(&config, self.instance);
        runner.reconfigure(registry, settings);
        Ok(())
    }
}

/// SIGHUP re-reads the configuration: the model registry and the runner's reloadable
/// settings are replaced (docs/decisions.md lists which keys need a restart); running
/// runs keep what they started with.
fn spawn_reload_on_sighup(
    reload: Reload,
    runner: draftsmith_runner::Runner,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = hangups.recv() => {}
            }
            match reload.apply(&runner) {
                Ok(()) => tracing::info!("configuration reloaded"),
                Err(err) => {
                    tracing::error!(error = %err, "configuration reload failed; keeping the previous one")
                }
            }
        }
    });
}

/// Demo mode: the scripted model drives the native engine unless an engine is configured.
fn demo_mode(config: &mut Config) {
    config.coding_agent.native_enabled = true;
    config
        .coding_agent
        .default_engine
        .get_or_insert(draftsmith_core::EngineKind::Native);
}

pub async fn create_token(config: Config, user: &str, role: Role) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let user = validate_user_name(user).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let created = mint_token(store.as_ref(), &user, role, "cli")
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    println!("{}", created.token);
    Ok(())
}

pub async fn mock_model(script: Option<PathBuf>, listen: &str) -> anyhow::Result<()> {
    let script = match script {
        Some(path) => {
            Script::from_file(&path).with_context(|| format!("reading {}", path.display()))?
        }
        None => Script::from_json(DEMO_SCRIPT)?,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    println!(
        "mock model listening on http://{}/v1",
        listener.local_addr()?
    );
    draftsmith_mockmodel::serve(listener, script, shutdown_signal()).await?;
    Ok(())
}

pub async fn sandbox_controller(
    mut config: Config,
    listen: &str,
    secret: String,
) -> anyhow::Result<()> {
    if secret.trim().len() < 16 {
        anyhow::bail!("the sandbox controller needs a secret of at least 16 characters");
    }
    // This process owns sandboxes itself, whatever a shared configuration says.
    config.sandbox.controller_url.clear();
    let stop = CancellationToken::new();
    let controller = draftsmith_service::startup::sandbox_controller(&config, stop.clone())?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    println!(
        "sandbox controller listening on http://{}",
        listener.local_addr()?
    );
    let app = draftsmith_sandbox::controller_router(controller, secret);
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    stop.cancel();
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
