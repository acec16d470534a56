//! Issue #7: one scripted five-step task (write, read, write, glob, answer) run three ways —
//! by raw OpenCode over its own API (`POST /session`, `POST /session/{id}/message`), through
//! draftsmith's OpenCode engine, and by draftsmith's native engine (both `POST run` → the
//! terminal event on the release binary) — reported as ratios against raw OpenCode, cold
//! (first run, server start included) and warm (the median of later runs), with memory.

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
use crate::report::{line, line_mib};

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

    let raw = raw_opencode(&opencode, &model).await?;
    let (native, engine) = through_the_service(&server_binary, &model).await?;

    line(
        "draftsmith OpenCode engine, warm run",
        engine.warm,
        "raw OpenCode, warm run",
        raw.warm,
    );
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
async fn raw_opencode(binary: &Path, model: &MockModel) -> anyhow::Result<Measured> {
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
    let base = server.client().base_url().to_owned();
    let http = reqwest::Client::new();
    raw_task(&http, &base, &password, model).await?;
    let cold = clock.elapsed();
    if !workspace.join("notes/b.txt").is_file() {
        bail!("raw OpenCode did not write notes/b.txt");
    }
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let clock = Instant::now();
        raw_task(&http, &base, &password, model).await?;
        times.push(clock.elapsed());
    }
    let pid = server.pid().context("the raw server has no pid")?;
    let rss_mib = tree_rss_mib(pid)?;
    server.stop().await;
    Ok(Measured {
        cold,
        warm: median(times),
        rss_mib,
    })
}

/// One task on a new session; OpenCode answers the synchronous call when the loop is done.
async fn raw_task(
    http: &reqwest::Client,
    base: &str,
    password: &str,
    model: &MockModel,
) -> anyhow::Result<()> {
    let before = model.requests().len();
    let session: Value = http
        .post(format!("{base}/session"))
        .basic_auth("opencode", Some(password))
        .json(&json!({"title": "bench"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = session["id"].as_str().context("a session id")?;
    http.post(format!("{base}/session/{id}/message"))
        .basic_auth("opencode", Some(password))
        .json(&json!({
            "model": {"providerID": "mock", "modelID": "coder"},
            "parts": [{"type": "text", "text": OPENCODE_TASK}]
        }))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let made = model.requests().len() - before;
    if made != STEPS {
        bail!("raw OpenCode made {made} model requests, expected {STEPS}");
    }
    Ok(())
}

/// The release binary on SQLite: native runs first (its RSS is then the service's alone),
/// then OpenCode runs (the service's RSS plus its OpenCode server's).
async fn through_the_service(
    binary: &Path,
    model: &MockModel,
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
    let native = timed_runs(&admin, &app, model, "native", native_task).await?;
    let native = Measured {
        rss_mib: rss_mib(pid)?,
        ..native
    };
    let app = new_app(&admin, "bench opencode").await?;
    let engine = timed_runs(&admin, &app, model, "opencode", |_| OPENCODE_TASK.into()).await?;
    let engine = Measured {
        rss_mib: tree_rss_mib(pid)?,
        ..engine
    };
    server.terminate().await;
    Ok((native, engine))
}

/// The native task of the `k`-th run of a chat. The native engine sends the chat's earlier
/// turns as messages, and the scripted model picks a turn by counting assistant messages,
/// so run `k` has a scenario of its own whose first `k` turns are never played.
fn native_task(k: usize) -> String {
    format!("bench-native-task-{k:02}: take notes")
}

/// A cold run on a new chat, then `RUNS` warm runs in the same chat; `input(k)` is the
/// prompt of the `k`-th.
async fn timed_runs(
    admin: &ApiClient,
    app: &App,
    model: &MockModel,
    engine: &str,
    input: impl Fn(usize) -> String,
) -> anyhow::Result<Measured> {
    let mut chat: Option<String> = None;
    let mut times = Vec::with_capacity(RUNS + 1);
    for k in 0..=RUNS {
        let before = model.requests().len();
        let body = json!({"input": input(k), "engine": engine, "chat_session_id": chat});
        let clock = Instant::now();
        let run = start_run_with(admin, app, &body).await?;
        let status = follow(admin, &run).await?;
        times.push(clock.elapsed());
        if status != RunStatus::Completed {
            bail!("a {engine} run ended {status:?}");
        }
        let made = model.requests().len() - before;
        if made != STEPS {
            bail!("a {engine} run made {made} model requests, expected {STEPS}");
        }
        chat = Some(run.chat_session_id.to_string());
    }
    let cold = times.remove(0);
    Ok(Measured {
        cold,
        warm: median(times),
        rss_mib: 0.0,
    })
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
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
