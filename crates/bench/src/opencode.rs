//! Issue #7: one scripted five-step task (write, read, write, glob, answer) run three ways —
//! by raw OpenCode over its own API (`POST /session`, `POST /session/{id}/message`), through
//! draftsmith's OpenCode engine, and by draftsmith's native engine (both `POST run` → the
//! terminal event on the release binary) — reported as ratios against raw OpenCode, cold
//! (first run, server start included) and warm (the median of later runs), with memory.
//! The warm runs of raw OpenCode and of the OpenCode engine alternate, so both see the same
//! machine: OpenCode's own run time drifts by half between minutes here.
//! Under the warm and the cold figures, where their time went (`phases`): to the first
//! model request, between requests, and from the last one to the end the client sees.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use draftsmith_core::RunStatus;
use draftsmith_core::api::App;
use draftsmith_engine::{ModelRegistry, ProviderKind, ProviderSpec};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_opencode::{OpencodeServer, OpencodeSettings, ServerOptions};
use draftsmith_testkit::{ADMIN_TOKEN, ApiClient, ServerProcess, StoreKind, TestDb};
use serde_json::{Value, json};

use crate::api::{follow, new_app, start_run_with};
use crate::memory::{child_pid, config_toml, rss_mib, server_binary};
use crate::phases::{Clock, Phases, TimedRun};
use crate::report::{line, line_mib, median_of};

/// Warm runs per way (after one cold run).
const RUNS: usize = 9;
/// Marks the task in prompts so the scripted model answers with each engine's tool names.
const OPENCODE_TASK: &str = "bench-oc-task: take notes";
/// Model requests the task makes.
const STEPS: usize = 5;

/// Timings and memory of one way of running the task.
struct Measured {
    cold: Duration,
    warm: Duration,
    rss_mib: f64,
    /// Where the warm runs' time went.
    phases: Phases,
    /// Where the cold run's time went.
    cold_phases: Phases,
}

pub async fn run() -> anyhow::Result<()> {
    println!(
        "== opencode: one 5-step task by raw OpenCode, draftsmith's OpenCode engine, native =="
    );
    let server_binary = server_binary();
    let Ok(server_binary) = server_binary.canonicalize() else {
        println!(
            "skipped: no server binary at {}; build it with `cargo build --release -p draftsmith`",
            server_binary.display()
        );
        return Ok(());
    };
    let opencode = match draftsmith_opencode::find_binary(None) {
        Ok(found) => found,
        Err(missing) => {
            println!("skipped: {missing}");
            return Ok(());
        }
    };
    let model = MockModel::start(script()?).await?;
    // Whichever way starts OpenCode first would otherwise pay for reading its binary
    // (≈100 MB) from disk.
    tokio::process::Command::new(&opencode)
        .arg("--version")
        .output()
        .await
        .context("running opencode --version")?;

    let mut raw = RawOpencode::start(&opencode, &model).await?;
    let result = through_the_service(&server_binary, &model, &mut raw).await;
    let raw = raw.finish().await;
    let ((native, engine), raw) = (result?, raw?);

    line(
        "draftsmith OpenCode engine, warm run",
        engine.warm,
        "raw OpenCode, warm run",
        raw.warm,
    );
    engine.phases.print(" of the OpenCode engine");
    raw.phases.print(" of raw OpenCode");
    line(
        "draftsmith native engine, warm run",
        native.warm,
        "raw OpenCode, warm run",
        raw.warm,
    );
    line(
        "draftsmith OpenCode engine, cold (sandbox + server)",
        engine.cold,
        "raw OpenCode, server start + run",
        raw.cold,
    );
    engine
        .cold_phases
        .print(" of the OpenCode engine's cold run");
    raw.cold_phases
        .print(" of raw OpenCode's cold run (from its start)");
    line(
        "draftsmith native engine, cold (sandbox)",
        native.cold,
        "raw OpenCode, server start + run",
        raw.cold,
    );
    line_mib(
        "RSS draftsmith + its OpenCode server",
        engine.rss_mib,
        "raw OpenCode server",
        raw.rss_mib,
    );
    line_mib(
        "RSS draftsmith, native engine",
        native.rss_mib,
        "raw OpenCode server",
        raw.rss_mib,
    );
    let violations = model.violations();
    if !violations.is_empty() {
        bail!("the scripted model saw invariant violations: {violations:?}");
    }
    Ok(())
}

/// `opencode serve` on its own, driven over its API with the synchronous prompt call.
struct RawOpencode {
    server: OpencodeServer,
    http: reqwest::Client,
    password: String,
    /// Server start and the first task.
    cold: Duration,
    /// Each later task.
    warm: Vec<Duration>,
    phases: Phases,
    cold_phases: Phases,
    _scratch: tempfile::TempDir,
}

impl RawOpencode {
    /// Starts the server and times it with the first task.
    async fn start(binary: &Path, model: &MockModel) -> anyhow::Result<Self> {
        let scratch = tempfile::tempdir()?;
        let workspace = scratch.path().join("workspace");
        std::fs::create_dir_all(&workspace)?;
        let password = "bench-password".to_owned();
        let registry = ModelRegistry::new(
            vec![ProviderSpec {
                id: "mock".into(),
                kind: ProviderKind::OpenAi,
                base_url: model.base_url(),
                api_key: Some("bench-key".into()),
                missing_key_env: None,
                models: vec!["coder".into()],
                demo: false,
            }],
            "mock/coder".into(),
        );
        let resolved = registry
            .resolve(Some("mock/coder"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let clock = Instant::now();
        let server = OpencodeServer::start(ServerOptions {
            binary: binary.to_path_buf(),
            workspace: workspace.clone(),
            home: scratch.path().join("home"),
            config_json: OpencodeSettings::for_model(&resolved, &[]).to_json(),
            confinement: Vec::new(),
            prepare: None,
            start_timeout: Duration::from_secs(60),
            password: Some(password.clone()),
            network: None,
        })
        .await?;
        let mut raw = Self {
            server,
            http: reqwest::Client::new(),
            password,
            cold: Duration::ZERO,
            warm: Vec::with_capacity(RUNS),
            phases: Phases::default(),
            cold_phases: Phases::default(),
            _scratch: scratch,
        };
        let mut first = raw.task(model).await?;
        first.posted = clock;
        raw.cold = first.ended - clock;
        raw.cold_phases.add(&first);
        if !workspace.join("notes/b.txt").is_file() {
            bail!("raw OpenCode did not write notes/b.txt");
        }
        Ok(raw)
    }

    /// Times one warm task.
    async fn warm_run(&mut self, model: &MockModel) -> anyhow::Result<()> {
        let timed = self.task(model).await?;
        self.warm.push(timed.ended - timed.posted);
        self.phases.add(&timed);
        Ok(())
    }

    /// One task on a new session; OpenCode answers the synchronous call when the loop is
    /// done.
    async fn task(&self, model: &MockModel) -> anyhow::Result<TimedRun> {
        let (http, password) = (&self.http, Some(&self.password));
        let base = self.server.client().base_url();
        let before = model.requests().len();
        let clock = Clock::start(model);
        let session: Value = http
            .post(format!("{base}/session"))
            .basic_auth("opencode", password)
            .json(&json!({"title": "bench"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = session["id"].as_str().context("a session id")?;
        http.post(format!("{base}/session/{id}/message"))
            .basic_auth("opencode", password)
            .json(&json!({
                "model": {"providerID": "mock", "modelID": "coder"},
                "parts": [{"type": "text", "text": OPENCODE_TASK}]
            }))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let timed = clock.ended();
        let made = model.requests().len() - before;
        if made != STEPS {
            bail!("raw OpenCode made {made} model requests, expected {STEPS}");
        }
        Ok(timed)
    }

    /// Its timings and memory; stops the server.
    async fn finish(self) -> anyhow::Result<Measured> {
        let rss = self
            .server
            .pid()
            .context("the raw server has no pid")
            .and_then(tree_rss_mib);
        self.server.stop().await;
        Ok(Measured {
            cold: self.cold,
            warm: median_of(self.warm).unwrap_or_default(),
            rss_mib: rss?,
            phases: self.phases,
            cold_phases: self.cold_phases,
        })
    }
}

/// The release binary on SQLite: native runs first (its RSS is then the service's alone),
/// then OpenCode runs (the service's RSS plus its OpenCode server's), each warm one after a
/// warm task of `raw`.
async fn through_the_service(
    binary: &Path,
    model: &MockModel,
    raw: &mut RawOpencode,
) -> anyhow::Result<(Measured, Measured)> {
    let config_dir = tempfile::tempdir()?;
    let config = config_dir.path().join("draftsmith.toml");
    std::fs::write(&config, config_toml(&model.base_url(), "opencode", false))?;
    let config = config.to_str().context("temporary path is not UTF-8")?;
    let db = TestDb::new(StoreKind::Sqlite).await;
    let server = ServerProcess::start_with_env(
        binary,
        &db,
        &[
            ("DRAFTSMITH_CONFIG", config),
            ("DRAFTSMITH_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    )
    .await;
    let pid = child_pid()?;
    let admin = server.admin();
    let app = new_app(&admin, "bench native").await?;
    let mut native = Chat::new(&admin, app, "native");
    for k in 0..=RUNS {
        native.run(model, &native_task(k)).await?;
    }
    let native = native.measured(rss_mib(pid)?);
    let app = new_app(&admin, "bench opencode").await?;
    let mut engine = Chat::new(&admin, app, "opencode");
    for k in 0..=RUNS {
        if k > 0 {
            raw.warm_run(model).await?;
        }
        engine.run(model, OPENCODE_TASK).await?;
    }
    let engine = engine.measured(tree_rss_mib(pid)?);
    server.terminate().await;
    Ok((native, engine))
}

/// The native task of the `k`-th run of a chat. The native engine sends the chat's earlier
/// turns as messages, and the scripted model picks a turn by counting assistant messages,
/// so run `k` has a scenario of its own whose first `k` turns are never played.
fn native_task(k: usize) -> String {
    format!("bench-native-task-{k:02}: take notes")
}

/// Runs of one engine in one chat of an app: the first is cold (a new chat, so a new
/// sandbox), the later ones warm.
struct Chat<'a> {
    admin: &'a ApiClient,
    app: App,
    engine: &'static str,
    chat: Option<String>,
    times: Vec<Duration>,
    /// Where the warm runs' time went.
    phases: Phases,
    /// Where the first (cold) run's time went.
    cold_phases: Phases,
}

impl<'a> Chat<'a> {
    fn new(admin: &'a ApiClient, app: App, engine: &'static str) -> Self {
        Self {
            admin,
            app,
            engine,
            chat: None,
            times: Vec::with_capacity(RUNS + 1),
            phases: Phases::default(),
            cold_phases: Phases::default(),
        }
    }

    /// Times one run of `input`, which must complete with the task's model requests.
    async fn run(&mut self, model: &MockModel, input: &str) -> anyhow::Result<()> {
        let engine = self.engine;
        let before = model.requests().len();
        let body = json!({"input": input, "engine": engine, "chat_session_id": self.chat});
        let mut clock = Clock::start(model);
        let run = start_run_with(self.admin, &self.app, &body).await?;
        clock.created();
        let status = follow(self.admin, &run).await?;
        let timed = clock.ended();
        self.times.push(timed.ended - timed.posted);
        match self.chat {
            Some(_) => self.phases.add(&timed),
            None => self.cold_phases.add(&timed),
        }
        if status != RunStatus::Completed {
            bail!("a {engine} run ended {status:?}");
        }
        let made = model.requests().len() - before;
        if made != STEPS {
            bail!("a {engine} run made {made} model requests, expected {STEPS}");
        }
        self.chat = Some(run.chat_session_id.to_string());
        Ok(())
    }

    /// The first run as cold, the median of the others as warm.
    fn measured(mut self, rss_mib: f64) -> Measured {
        let cold = if self.times.is_empty() {
            Duration::ZERO
        } else {
            self.times.remove(0)
        };
        Measured {
            cold,
            warm: median_of(self.times).unwrap_or_default(),
            rss_mib,
            phases: self.phases,
            cold_phases: self.cold_phases,
        }
    }
}

/// The summed RSS of `pid` and every descendant (shared pages count once per process, so
/// this is an upper bound).
fn tree_rss_mib(pid: u32) -> anyhow::Result<f64> {
    let mut total = rss_mib(pid)?;
    for child in draftsmith_opencode::descendants(pid) {
        total += rss_mib(child).unwrap_or(0.0);
    }
    Ok(total)
}

/// The task in each engine's tool names: write a note, read it, write another, glob, answer.
fn script() -> anyhow::Result<Script> {
    let turns = |write: &str, read: &str, path_key: &str| {
        json!([
            {"steps": [{"text": "Writing a note."}, {"tool_call": {"name": write,
                "arguments": {path_key: "notes/a.txt", "content": "first note\n"}}}]},
            {"steps": [{"tool_call": {"name": read, "arguments": {path_key: "notes/a.txt"}}}]},
            {"steps": [{"tool_call": {"name": write,
                "arguments": {path_key: "notes/b.txt", "content": "second note\n"}}}]},
            {"steps": [{"tool_call": {"name": "glob", "arguments": {"pattern": "notes/*"}}}]},
            {"steps": [{"text": "Two notes written.", "chunk": 6}]}
        ])
    };
    let mut scenarios = vec![
        json!({"name": "opencode", "match": {"contains": "bench-oc-task"},
        "turns": turns("write", "read", "filePath")}),
    ];
    // Newest run first: a later run's history holds the earlier runs' markers too.
    for k in (0..=RUNS).rev() {
        let mut native = vec![json!({"steps": [{"text": "(unused)"}]}); k];
        native.extend(
            turns("write", "read", "path")
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        scenarios.push(json!({"name": format!("native-{k}"),
            "match": {"contains": native_task(k)}, "turns": native}));
    }
    scenarios.push(json!({"name": "other", "turns": [{"steps": [{"text": "ok"}]}]}));
    let script = json!({"chunk_delay_ms": 0, "scenarios": scenarios});
    Ok(Script::from_json(&script.to_string())?)
}
