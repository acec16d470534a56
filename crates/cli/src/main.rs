//! The `draftsmith` binary: a thin shell over the libraries. `serve` runs the service,
//! `run` drives one run from a terminal, `token create` mints tokens, and `mock-model`
//! serves the scripted model.

mod follow;
mod publish;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use draftsmith_core::{EngineKind, Role};
use draftsmith_service::config::Config;
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
    Serve {
        /// Register the built-in scripted model as provider `demo` and enable the native
        /// engine, so a whole run works offline with no API key.
        #[arg(long)]
        demo: bool,
    },
    /// Start a run on an app and follow its progress.
    Run {
        /// App id or slug.
        #[arg(long)]
        app: String,
        /// The prompt.
        prompt: String,
        /// `provider/model` or `auto`.
        #[arg(long)]
        model: Option<String>,
        /// `opencode` or `native`.
        #[arg(long, value_enum)]
        engine: Option<EngineArg>,
        /// Continue this chat session.
        #[arg(long)]
        chat_session: Option<String>,
        /// Queue the prompt on the server when the app has an active run, instead of
        /// failing; the server starts it in order when the app is free.
        #[arg(long)]
        queue: bool,
        /// The service's URL.
        #[arg(long, env = "DRAFTSMITH_URL", default_value = "http://127.0.0.1:8787")]
        url: String,
        /// A bearer token.
        #[arg(long, env = "DRAFTSMITH_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Build a release of an app and make it live, showing progress.
    Publish {
        /// App id or slug.
        #[arg(long)]
        app: String,
        /// Build this checkpoint instead of the current draft.
        #[arg(long)]
        checkpoint: Option<String>,
        /// Record the release without making it live.
        #[arg(long)]
        no_promote: bool,
        /// The service's URL.
        #[arg(long, env = "DRAFTSMITH_URL", default_value = "http://127.0.0.1:8787")]
        url: String,
        /// A bearer token.
        #[arg(long, env = "DRAFTSMITH_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Serve sandboxes to other draftsmith instances over the internal HTTP API.
    SandboxController {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8790")]
        listen: String,
        /// The shared secret callers must send as a bearer token.
        #[arg(
            long,
            env = "DRAFTSMITH_SANDBOX_CONTROLLER_SECRET",
            hide_env_values = true
        )]
        secret: String,
    },
    /// Serve a scripted OpenAI- and Anthropic-compatible model (tests, demos, benchmarks).
    MockModel {
        /// The script (see docs/mock-model.md); the built-in demo script when omitted.
        #[arg(long)]
        script: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9999")]
        listen: String,
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

#[derive(Clone, Copy, ValueEnum)]
enum EngineArg {
    Opencode,
    Native,
}

impl From<EngineArg> for EngineKind {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Opencode => EngineKind::Opencode,
            EngineArg::Native => EngineKind::Native,
        }
    }
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
    match cli.command {
        Command::Serve { demo } => {
            let config = Config::load(cli.config.as_deref(), &|k| std::env::var(k).ok())?;
            serve::serve(cli.config.clone(), config, demo).await
        }
        Command::Run {
            app,
            prompt,
            model,
            engine,
            chat_session,
            queue,
            url,
            token,
        } => {
            let request = follow::RunRequest {
                app,
                prompt,
                model,
                engine: engine.map(Into::into),
                chat_session,
                queue,
            };
            let code = follow::run(&url, &token, request).await?;
            std::process::exit(code);
        }
        Command::Publish {
            app,
            checkpoint,
            no_promote,
            url,
            token,
        } => {
            let request = publish::PublishRequest {
                app,
                checkpoint,
                promote: !no_promote,
            };
            let code = publish::publish(&url, &token, request).await?;
            std::process::exit(code);
        }
        Command::Token {
            command: TokenCommand::Create { user, role },
        } => {
            let config = Config::load(cli.config.as_deref(), &|k| std::env::var(k).ok())?;
            serve::create_token(config, &user, role.into()).await
        }
        Command::MockModel { script, listen } => serve::mock_model(script, &listen).await,
        Command::SandboxController { listen, secret } => {
            let config = Config::load(cli.config.as_deref(), &|k| std::env::var(k).ok())?;
            serve::sandbox_controller(config, &listen, secret).await
        }
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
