//! `draftsmith run`: create a run through the API and show its progress live — streamed
//! text, a line per tool step, a spinner while waiting — resuming the stream after a drop.
//! The exit code is 0 only when the run completes (or, with `--queue` on a busy app, when
//! the prompt was queued).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use draftsmith_core::api::{AppList, CreateRun, QueuedPrompt, Run, WhenBusy};
use draftsmith_core::{EngineKind, EventBody, RunEvent};
use eventsource_stream::Eventsource;
use futures::StreamExt;

/// What the user asked for.
pub struct RunRequest {
    pub app: String,
    pub prompt: String,
    pub model: Option<String>,
    pub engine: Option<EngineKind>,
    pub chat_session: Option<String>,
    /// `--queue`: queue on a busy app instead of failing.
    pub queue: bool,
}

/// How many times a dropped stream is resumed.
const RECONNECTS: usize = 20;

pub async fn run(base: &str, token: &str, request: RunRequest) -> anyhow::Result<i32> {
    let base = base.trim_end_matches('/');
    let http = reqwest::Client::new();
    let app = resolve_app(&http, base, token, &request.app).await?;
    let body = CreateRun {
        input: request.prompt,
        model_id: request.model,
        engine: request.engine,
        chat_session_id: request
            .chat_session
            .map(|s| s.parse())
            .transpose()
            .context("--chat-session is not a session id")?,
        max_cost: None,
        max_tokens: None,
        when_busy: request.queue.then_some(WhenBusy::Queue),
        attachments: Vec::new(),
    };
    let response = http
        .post(format!("{base}/admin/apps/{app}/coding-agent/runs"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("reaching {base}"))?;
    if !response.status().is_success() {
        bail!("{}", error_text(response).await);
    }
    if response.status() == reqwest::StatusCode::ACCEPTED {
        let item: QueuedPrompt = response.json().await?;
        println!(
            "queued at position {} (item {}); the server starts it when the app is free",
            item.position, item.id
        );
        return Ok(0);
    }
    let run: Run = response.json().await?;
    eprintln!(
        "run {} · engine {} · model {} · chat {}",
        run.run_id,
        run.engine.as_str(),
        run.resolved_model_id,
        run.chat_session_id
    );
    follow(&http, base, token, &run).await
}

pub(crate) async fn resolve_app(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    app: &str,
) -> anyhow::Result<String> {
    if app.parse::<uuid::Uuid>().is_ok() {
        return Ok(app.to_owned());
    }
    let response = http
        .get(format!("{base}/admin/apps"))
        .bearer_auth(token)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("{}", error_text(response).await);
    }
    let list: AppList = response.json().await?;
    list.apps
        .into_iter()
        .find(|a| a.slug == app)
        .map(|a| a.id.to_string())
        .with_context(|| format!("no app with id or slug {app:?}"))
}

pub(crate) async fn error_text(response: reqwest::Response) -> String {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let code = body["error"]["code"].as_str().unwrap_or("HTTP_ERROR");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    format!("{status} {code}: {message}")
}

async fn follow(http: &reqwest::Client, base: &str, token: &str, run: &Run) -> anyhow::Result<i32> {
    let mut view = View::new();
    let mut last = 0i64;
    for _ in 0..RECONNECTS {
        let response = http
            .get(format!("{base}{}", run.stream_url))
            .bearer_auth(token)
            .header("last-event-id", last.to_string())
            .send()
            .await;
        let response = match response {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => bail!("{}", error_text(r).await),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut events = response.bytes_stream().eventsource();
        loop {
            let next = tokio::time::timeout(Duration::from_millis(120), events.next()).await;
            let item = match next {
                Err(_) => {
                    view.tick();
                    continue;
                }
                Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(item))) => item,
            };
            let Ok(event) = serde_json::from_str::<RunEvent>(&item.data) else {
                continue;
            };
            if event.seq <= last {
                continue;
            }
            last = event.seq;
            if let Some(code) = view.show(&event) {
                return Ok(code);
            }
        }
    }
    bail!("lost the event stream of run {}", run.run_id)
}

/// The terminal view: text as it streams, one line per tool step, a spinner when idle.
struct View {
    in_text: bool,
    spinner: bool,
    frame: usize,
}

impl View {
    fn new() -> Self {
        Self {
            in_text: false,
            spinner: std::io::stderr().is_terminal(),
            frame: 0,
        }
    }

    fn tick(&mut self) {
        if self.spinner && !self.in_text {
            const FRAMES: [&str; 4] = ["|", "/", "-", "\\"];
            self.frame = (self.frame + 1) % FRAMES.len();
            eprint!("\r{} working…", FRAMES[self.frame]);
        }
    }

    fn line(&mut self, text: &str) {
        if self.in_text {
            println!();
            self.in_text = false;
        }
        if self.spinner {
            eprint!("\r\x1b[K");
        }
        println!("{text}");
    }

    /// Shows an event; returns the exit code once the run has ended.
    fn show(&mut self, event: &RunEvent) -> Option<i32> {
        if let Some(usage) = event.body.usage() {
            self.line(&usage_line(usage));
        }
        match &event.body {
            EventBody::AssistantDelta { delta, .. } => {
                if self.spinner && !self.in_text {
                    eprint!("\r\x1b[K");
                }
                self.in_text = true;
                print!("{delta}");
                let _ = std::io::stdout().flush();
            }
            EventBody::AssistantMessage { .. } if self.in_text => {
                println!();
                self.in_text = false;
            }
            EventBody::SandboxReady { reused, ms, .. } => {
                let how = if *reused { "warm" } else { "new" };
                self.line(&format!("· sandbox ready ({how}, {ms} ms)"));
            }
            EventBody::ToolStarted { tool, paths, .. } => {
                self.line(&format!("▸ {tool} {}", paths.join(" ")));
            }
            EventBody::ToolCompleted { tool, ms, .. } => {
                self.line(&format!("  ✓ {tool} ({ms} ms)"))
            }
            EventBody::ToolFailed { tool, error, .. } => {
                self.line(&format!("  ✗ {tool}: {} {}", error.code, error.message));
            }
            EventBody::VerificationStarted { command } => {
                self.line(&format!("▸ verifying: {command}"))
            }
            EventBody::VerificationCompleted(r) => {
                self.line(&format!("  ✓ {} ({} ms)", r.command, r.ms))
            }
            EventBody::VerificationFailed(r) => {
                self.line(&format!("  ✗ {} exited {:?}", r.command, r.exit_code))
            }
            EventBody::DraftSynced {
                revision,
                added,
                modified,
                deleted,
            } => self.line(&format!(
                "· draft revision {revision} (+{} ~{} -{})",
                added.len(),
                modified.len(),
                deleted.len()
            )),
            EventBody::RunCompleted { revision, .. } => {
                self.line(&format!("✓ completed (draft revision {revision})"));
                return Some(0);
            }
            EventBody::RunFailed { error, .. } => {
                self.line(&format!("✗ failed: {} {}", error.code, error.message));
                return Some(1);
            }
            EventBody::RunCancelled { by, .. } => {
                self.line(&format!("■ cancelled by {by}"));
                return Some(2);
            }
            EventBody::RunPaused { reason, .. } => {
                self.line(&format!("‖ paused: {reason}"));
                return Some(3);
            }
            _ => {}
        }
        None
    }
}

/// A run's usage as one line: tokens of each kind, calls, and the cost in dollars.
pub fn usage_line(usage: &draftsmith_core::UsageTotals) -> String {
    let estimated = match usage.estimated_calls {
        0 => String::new(),
        n => format!(", {n} estimated"),
    };
    format!(
        "· usage: {} in, {} out, {} cached, {} cache writes, {} reasoning; {} model calls{estimated}; ${}.{:06}",
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
        usage.model_calls,
        usage.cost_micro_usd / 1_000_000,
        usage.cost_micro_usd % 1_000_000
    )
}
