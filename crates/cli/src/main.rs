//! The `draftsmith` binary: a thin shell over the server and store libraries.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use draftsmith_core::Role;
use draftsmith_server::config::Config;
use draftsmith_server::startup::{bootstrap_admin, open_store};
use draftsmith_server::{AppState, Settings};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "draftsmith",
    version,
    about = "A self-hostable coding-agent service for AI app builders"
)]
struct Cli {
    /// Configuration file (default: ./draftsmith.toml when present).
    #[arg(long, global = true, env = "DRAFTSMITH_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the builder UI.
    Serve,
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once.
    Create {
        /// User the token acts as.
        #[arg(long)]
        user: String,
        /// Role of the token.
        #[arg(long, value_enum, default_value = "builder")]
        role: RoleArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Builder,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Builder => Role::Builder,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let config = Config::load(cli.config.as_deref(), &|k| std::env::var(k).ok())?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Token {
            command: TokenCommand::Create { user, role },
        } => {
            let store = open_store(&config).await?;
            let user = draftsmith_server::routes::admin::validate_user_name(&user)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let created = draftsmith_server::routes::admin::mint_token(
                store.as_ref(),
                &user,
                role.into(),
                "cli",
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            println!("{}", created.token);
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await.context("opening the database")?;
    let env_token = std::env::var("DRAFTSMITH_ADMIN_TOKEN").ok();
    if let Some(token) = bootstrap_admin(store.as_ref(), env_token.as_deref()).await? {
        println!("draftsmith: created the first admin token (shown once, keep it): {token}");
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("draftsmith listening on http://{addr}");
    tracing::info!(%addr, store = store.backend().as_str(), "serving");
    let state = AppState {
        store: store.clone(),
        settings: std::sync::Arc::new(Settings::from(&config)),
    };
    draftsmith_server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("DRAFTSMITH_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
