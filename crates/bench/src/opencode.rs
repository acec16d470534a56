//! Issue #7: one scripted five-step task (write, read, write, glob, answer) run three ways —
//! by raw OpenCode over its own API (`POST /session`, `POST /session/{id}/message`), through
//! draftsmith's OpenCode engine, and by draftsmith's native engine (both `POST run` → the
//! terminal event on the release binary) — reported as ratios against raw OpenCode, cold
//! (first run, server start included; the median of [`COLD_RUNS`]) and warm (the median of
//! later runs), with memory. The warm runs of raw OpenCode and of the OpenCode engine
//! alternate, and so do their cold runs, so both see the same machine: OpenCode's own run
//! time drifts by half between minutes here, and one cold run of each way differed by a
//! second either way on one machine within ten minutes.
//! The warm figure also against raw OpenCode whose `GET /event` a client follows through
//! the task, like for like: the engine's progress stream is that event stream, which
//! OpenCode then writes every event of the task to.
//! Under the warm and the cold figures, where their time went (`phases`): to the first
//! model request, between requests, and from the last one to the end the client sees.
//! Then the first runs of new chats made ahead (`[opencode] warm_chats = 1`), against more
//! of raw's cold runs, alternating too, with what their idle servers cost in memory.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use draftsmith_core::RunStatus;
use draftsmith_core::api::App;
use draftsmith_engine::{ModelRegistry, ProviderKind, ProviderSpec};
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_opencode::{OpencodeServer, OpencodeSettings, ServerOptions};
use draftsmith_testkit::ApiClient;
use serde_json::{Value, json};

use crate::api::{follow, new_app, start_run_with};
use crate::memory::{Service, config_toml, cpu_ms, rss_mib, server_binary};
use crate::phases::{Clock, Phases, TimedRun};
use crate::report::{line, line_mib, median_of, paired_ratios, wait_for_quiet};

/// Warm runs per way (after the first cold run).
const RUNS: usize = 15;
/// Cold runs per way: a raw server started for one task, and the first run of a new chat
/// (a new sandbox with its own OpenCode server), alternating.
const COLD_RUNS: usize = 5;
/// Marks the task in prompts so the scripted model answers with each engine's tool names.
const OPENCODE_TASK: &str = "bench-oc-task: take notes";
/// Model requests the task makes.
const STEPS: usize = 5;

/// Timings and memory of one way of running the task.
struct Measured {
    /// Each cold run, in the order they ran.
    colds: Vec<Duration>,
    /// Each warm run, in the order they ran.
    warms: Vec<Duration>,
    /// What a warm run used (the mean): the OpenCode server's process tree (for the
    /// service, every process its sandboxes run).
    warm_usage: Usage,
    /// What the service itself used in a warm run (the mean; nothing for raw OpenCode).
    service_usage: Usage,
    rss_mib: f64,
    /// Where the warm runs' time went.
    phases: Phases,
    /// Where the cold run's time went.
    cold_phases: Phases,
}

impl Measured {
    /// The median cold run.
    fn cold(&self) -> Duration {
        median_of(self.colds.clone()).unwrap_or_default()
    }

    /// The median warm run.
    fn warm(&self) -> Duration {
        median_of(self.warms.clone()).unwrap_or_default()
    }
}

pub async fn run() -> anyhow::Result<()> {
    println!(
        "== opencode: one 5-step task by raw OpenCode, draftsmith's OpenCode engine, native =="
    );
    wait_for_quiet().await;
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
    let ahead = if result.is_ok() {
        Some(made_ahead(&server_binary, &model, &mut raw).await)
    } else {
        None
    };
    let raw = raw.finish().await;
    let ((native, engine), (raw, followed)) = (result?, raw?);
    let ahead = ahead.context("the chats made ahead were not measured")??;

    line(
        "draftsmith OpenCode engine, warm run",
        engine.warm(),
        "raw OpenCode, warm run",
        raw.warm(),
    );
    if let Some((median, low, high)) = paired_ratios(&engine.warms, &raw.warms) {
        println!(
            "  paired: each of its warm runs over raw OpenCode's run of the same round, median ratio {median:.3} (from {low:.3} to {high:.3})"
        );
    }
    line(
        "draftsmith OpenCode engine, warm run, like for like",
        engine.warm(),
        "raw OpenCode + /event follower, warm",
        median_of(followed.clone()).unwrap_or_default(),
    );
    if let Some((median, low, high)) = paired_ratios(&engine.warms, &followed) {
        println!(
            "  paired: each of its warm runs over raw OpenCode's followed run just before it, median ratio {median:.3} (from {low:.3} to {high:.3})"
        );
    }
    engine.phases.print(" of the OpenCode engine");
    raw.phases.print(" of raw OpenCode");
    println!(
        "  CPU per warm run (ms): the engine's OpenCode server {:.1}, the service itself {:.1}; raw OpenCode {:.1}",
        engine.warm_usage.cpu_ms, engine.service_usage.cpu_ms, raw.warm_usage.cpu_ms
    );
    println!(
        "  waiting for a CPU per warm run (ms): the engine's OpenCode server {:.1} (its main thread {:.1}), the service itself {:.1}; raw OpenCode {:.1} (its main thread {:.1})",
        engine.warm_usage.wait_ms,
        engine.warm_usage.main_wait_ms,
        engine.service_usage.wait_ms,
        raw.warm_usage.wait_ms,
        raw.warm_usage.main_wait_ms
    );
    line(
        "draftsmith native engine, warm run",
        native.warm(),
        "raw OpenCode, warm run",
        raw.warm(),
    );
    println!(
        "  CPU per warm run (ms): the service itself {:.1}, its sandboxes' processes {:.1}",
        native.service_usage.cpu_ms, native.warm_usage.cpu_ms
    );
    line(
        "draftsmith OpenCode engine, cold (sandbox + server)",
        engine.cold(),
        "raw OpenCode, server start + run",
        raw.cold(),
    );
    println!(
        "  cold runs in order (ms): the OpenCode engine {}, raw OpenCode {}",
        in_ms(&engine.colds),
        in_ms(&raw.colds)
    );
    engine
        .cold_phases
        .print(" of the OpenCode engine's cold runs");
    raw.cold_phases
        .print(" of raw OpenCode's cold runs (from its start)");
    line(
        "draftsmith OpenCode engine, a new chat made ahead",
        ahead.cold(),
        "raw OpenCode, server start + run",
        raw.cold(),
    );
    println!(
        "  its runs in order (ms): {} ([opencode] warm_chats = 1: the chat's sandbox and server made while the service idled)",
        in_ms(&ahead.colds)
    );
    ahead.cold_phases.print(" of the runs of chats made ahead");
    line_mib(
        "RSS of a chat made ahead (its idle server)",
        ahead.rss_mib,
        "raw OpenCode server",
        raw.rss_mib,
    );
    line(
        "draftsmith native engine, cold (sandbox)",
        native.cold(),
        "raw OpenCode, server start + run",
        raw.cold(),
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
    binary: std::path::PathBuf,
    /// The server of the first cold run, which also runs the warm tasks.
    first: Started,
    /// The servers of the later cold runs, idle until the end (as the engine's are).
    others: Vec<Started>,
    http: reqwest::Client,
    /// Each server start with its first task.
    colds: Vec<Duration>,
    /// Each later task.
    warm: Vec<Duration>,
    /// Each later task run while a client follows the server's `GET /event`, as the
    /// engine does (and OpenCode's own clients do): OpenCode then writes every event of
    /// the task to that stream.
    followed: Vec<Duration>,
    /// What the first server used over the later tasks.
    warm_usage: Usage,
    phases: Phases,
    cold_phases: Phases,
}

/// One raw server with its scratch directory (workspace and HOME).
struct Started {
    server: OpencodeServer,
    /// Deleted when dropped, after the server stopped.
    _scratch: tempfile::TempDir,
}

/// The password of every raw server.
const RAW_PASSWORD: &str = "bench-password";

impl RawOpencode {
    /// Starts the server and times it with the first task.
    async fn start(binary: &Path, model: &MockModel) -> anyhow::Result<Self> {
        let http = reqwest::Client::new();
        let (first, timed) = Self::cold(binary, &http, model).await?;
        let mut raw = Self {
            binary: binary.to_path_buf(),
            first,
            others: Vec::with_capacity(COLD_RUNS - 1),
            http,
            colds: Vec::with_capacity(COLD_RUNS),
            warm: Vec::with_capacity(RUNS),
            followed: Vec::with_capacity(RUNS),
            warm_usage: Usage::default(),
            phases: Phases::default(),
            cold_phases: Phases::default(),
        };
        raw.colds.push(timed.ended - timed.posted);
        raw.cold_phases.add(&timed);
        Ok(raw)
    }

    /// Times one more cold run: a new server, in a new scratch directory, and its task.
    async fn cold_run(&mut self, model: &MockModel) -> anyhow::Result<()> {
        let (started, timed) = Self::cold(&self.binary, &self.http, model).await?;
        self.others.push(started);
        self.colds.push(timed.ended - timed.posted);
        self.cold_phases.add(&timed);
        Ok(())
    }

    /// Starts a server in a new scratch directory and runs the first task on it, timed
    /// from the start.
    async fn cold(
        binary: &Path,
        http: &reqwest::Client,
        model: &MockModel,
    ) -> anyhow::Result<(Started, TimedRun)> {
        let scratch = tempfile::tempdir()?;
        let workspace = scratch.path().join("workspace");
        std::fs::create_dir_all(&workspace)?;
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
            env: Vec::new(),
            config_json: OpencodeSettings::for_model(&resolved, &[]).to_json(),
            confinement: Vec::new(),
            prepare: None,
            start_timeout: Duration::from_secs(60),
            password: Some(RAW_PASSWORD.to_owned()),
            network: None,
        })
        .await?;
        let mut timed = task(http, &server, model).await?;
        timed.posted = clock;
        if !workspace.join("notes/b.txt").is_file() {
            bail!("raw OpenCode did not write notes/b.txt");
        }
        Ok((
            Started {
                server,
                _scratch: scratch,
            },
            timed,
        ))
    }

    /// Times one warm task.
    async fn warm_run(&mut self, model: &MockModel) -> anyhow::Result<()> {
        let pid = self
            .first
            .server
            .pid()
            .context("the raw server has no pid")?;
        let before = Usage::of_tree(pid);
        let timed = task(&self.http, &self.first.server, model).await?;
        self.warm_usage += Usage::of_tree(pid) - before;
        self.warm.push(timed.ended - timed.posted);
        self.phases.add(&timed);
        Ok(())
    }

    /// Times one warm task while its event stream is followed.
    async fn warm_run_following(&mut self, model: &MockModel) -> anyhow::Result<()> {
        let base = self.first.server.client().base_url();
        let mut events = self
            .http
            .get(format!("{base}/event"))
            .basic_auth("opencode", Some(RAW_PASSWORD))
            .header("accept", "text/event-stream")
            .send()
            .await?
            .error_for_status()?;
        // Its first event (`server.connected`) says the subscription stands.
        events
            .chunk()
            .await?
            .context("the event stream ended before it connected")?;
        let follower = tokio::spawn(async move { while let Ok(Some(_)) = events.chunk().await {} });
        let timed = task(&self.http, &self.first.server, model).await;
        follower.abort();
        let timed = timed?;
        self.followed.push(timed.ended - timed.posted);
        Ok(())
    }

    /// Its timings and memory (the first server's); stops the servers.
    async fn finish(self) -> anyhow::Result<(Measured, Vec<Duration>)> {
        let rss = self
            .first
            .server
            .pid()
            .context("the raw server has no pid")
            .and_then(tree_rss_mib);
        for started in std::iter::once(self.first).chain(self.others) {
            started.server.stop().await;
        }
        let runs = self.warm.len().max(1) as f64;
        let measured = Measured {
            colds: self.colds,
            warms: self.warm,
            warm_usage: self.warm_usage / runs,
            service_usage: Usage::default(),
            rss_mib: rss?,
            phases: self.phases,
            cold_phases: self.cold_phases,
        };
        Ok((measured, self.followed))
    }
}

/// One task on a new session of `server`; OpenCode answers the synchronous call when the
/// loop is done.
async fn task(
    http: &reqwest::Client,
    server: &OpencodeServer,
    model: &MockModel,
) -> anyhow::Result<TimedRun> {
    let password = Some(RAW_PASSWORD);
    let base = server.client().base_url();
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

/// The release binary on SQLite: native runs first (its RSS is then the service's alone),
/// then OpenCode runs (the service's RSS plus its OpenCode server's), each warm one after a
/// warm task of `raw`, then the later cold runs, each of a new chat after one of `raw`.
async fn through_the_service(
    binary: &Path,
    model: &MockModel,
    raw: &mut RawOpencode,
) -> anyhow::Result<(Measured, Measured)> {
    let service =
        Service::start(binary, &config_toml(&model.base_url(), "opencode", false)).await?;
    let (server, pid) = (service.server, service.pid);
    let admin = server.admin();
    let app = new_app(&admin, "bench native").await?;
    let mut native = Chat::new(&admin, pid, app, "native");
    for k in 0..=RUNS {
        native.run(model, &native_task(k)).await?;
    }
    let native = native.measured(rss_mib(pid)?);
    let app = new_app(&admin, "bench opencode").await?;
    let mut engine = Chat::new(&admin, pid, app, "opencode");
    for k in 0..=RUNS {
        if k > 0 {
            raw.warm_run(model).await?;
            raw.warm_run_following(model).await?;
        }
        engine.run(model, OPENCODE_TASK).await?;
    }
    let rss = tree_rss_mib(pid)?;
    for _ in 1..COLD_RUNS {
        raw.cold_run(model).await?;
        engine.new_chat();
        engine.run(model, OPENCODE_TASK).await?;
    }
    let engine = engine.measured(rss);
    server.terminate().await;
    Ok((native, engine))
}

/// New chats of the OpenCode engine on a service with `[opencode] warm_chats = 1`, each run
/// timed after one of `raw`'s cold runs, once the service has made a chat of each template
/// ahead (its sandbox made and its server started while it idled). Each run must land in a
/// chat whose sandbox existed before it was posted. The RSS is what one chat made ahead
/// holds before any run: its idle server's process tree.
async fn made_ahead(
    binary: &Path,
    model: &MockModel,
    raw: &mut RawOpencode,
) -> anyhow::Result<Measured> {
    let text = config_toml(&model.base_url(), "opencode", false);
    let service = Service::start(binary, &format!("{text}\n[opencode]\nwarm_chats = 1\n")).await?;
    let (server, pid) = (service.server, service.pid);
    let admin = server.admin();
    let app = new_app(&admin, "bench made ahead").await?;
    let mut chat = Chat::new(&admin, pid, app, "opencode");
    let sandboxes = service.db.dir.path().join("sandboxes");
    let templates = draftsmith_templates::all().len();
    let mut idle_server_mib = None;
    for _ in 0..COLD_RUNS {
        // Raw's cold run too waits until the service is idle again: the next chat's server
        // starts after each run.
        chats_made_ahead(&admin, templates).await?;
        if idle_server_mib.is_none() {
            let servers = tree_rss_mib(pid)? - rss_mib(pid)?;
            idle_server_mib = Some(servers / templates as f64);
        }
        raw.cold_run(model).await?;
        let before = chat_sandboxes(&sandboxes)?;
        chat.new_chat();
        chat.run(model, OPENCODE_TASK).await?;
        let made = chat.chat.as_ref().map(|c| format!("chat-{c}"));
        if !made.is_some_and(|c| before.contains(&c)) {
            bail!("a new chat's run did not start in a chat made ahead");
        }
    }
    server.terminate().await;
    Ok(chat.measured(idle_server_mib.unwrap_or_default()))
}

/// Waits (at most 60 s) until the service has `count` chats made ahead.
async fn chats_made_ahead(admin: &ApiClient, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = admin
            .request(reqwest::Method::GET, "/metrics")
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let ready = metrics
            .lines()
            .find_map(|l| l.strip_prefix("draftsmith_chats_made_ahead "))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if ready >= count as f64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the service made {ready} of {count} chats ahead within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The chat sandboxes' directory names under `sandboxes`.
fn chat_sandboxes(sandboxes: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(sandboxes)? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// The native task of the `k`-th run of a chat. The native engine sends the chat's earlier
/// turns as messages, and the scripted model picks a turn by counting assistant messages,
/// so run `k` has a scenario of its own whose first `k` turns are never played.
fn native_task(k: usize) -> String {
    format!("bench-native-task-{k:02}: take notes")
}

/// Runs of one engine in a chat of an app: the first is cold (a new chat, so a new
/// sandbox), the later ones warm, until [`Chat::new_chat`].
struct Chat<'a> {
    admin: &'a ApiClient,
    app: App,
    engine: &'static str,
    /// The service's pid.
    service: u32,
    chat: Option<String>,
    colds: Vec<Duration>,
    warms: Vec<Duration>,
    /// What the service itself used over the warm runs.
    service_usage: Usage,
    /// What its sandboxes' processes used over the warm runs.
    sandboxes_usage: Usage,
    /// Where the warm runs' time went.
    phases: Phases,
    /// Where the cold runs' time went.
    cold_phases: Phases,
}

impl<'a> Chat<'a> {
    fn new(admin: &'a ApiClient, service: u32, app: App, engine: &'static str) -> Self {
        Self {
            admin,
            app,
            engine,
            service,
            chat: None,
            colds: Vec::with_capacity(COLD_RUNS),
            warms: Vec::with_capacity(RUNS),
            service_usage: Usage::default(),
            sandboxes_usage: Usage::default(),
            phases: Phases::default(),
            cold_phases: Phases::default(),
        }
    }

    /// Times one run of `input`, which must complete with the task's model requests.
    async fn run(&mut self, model: &MockModel, input: &str) -> anyhow::Result<()> {
        let engine = self.engine;
        let before = model.requests().len();
        let body = json!({"input": input, "engine": engine, "chat_session_id": self.chat});
        let (service, sandboxes) = self.usage();
        let mut clock = Clock::start(model);
        let run = start_run_with(self.admin, &self.app, &body).await?;
        clock.created();
        let status = follow(self.admin, &run).await?;
        let timed = clock.ended();
        let took = timed.ended - timed.posted;
        match self.chat {
            Some(_) => {
                let (service_now, sandboxes_now) = self.usage();
                self.service_usage += service_now - service;
                self.sandboxes_usage += sandboxes_now - sandboxes;
                self.warms.push(took);
                self.phases.add(&timed);
            }
            None => {
                self.colds.push(took);
                self.cold_phases.add(&timed);
            }
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

    /// What the service itself and its sandboxes' processes have used so far.
    fn usage(&self) -> (Usage, Usage) {
        let sandboxes = draftsmith_opencode::descendants(self.service);
        (Usage::of(&[self.service]), Usage::of(&sandboxes))
    }

    /// The next run starts a new chat (a new sandbox): it is cold.
    fn new_chat(&mut self) {
        self.chat = None;
    }

    /// The medians of the cold runs and of the warm ones.
    fn measured(self, rss_mib: f64) -> Measured {
        let runs = self.warms.len().max(1) as f64;
        Measured {
            colds: self.colds,
            warms: self.warms,
            warm_usage: self.sandboxes_usage / runs,
            service_usage: self.service_usage / runs,
            rss_mib,
            phases: self.phases,
            cold_phases: self.cold_phases,
        }
    }
}

/// `times` in milliseconds, as `[a, b, c]`.
fn in_ms(times: &[Duration]) -> String {
    let each: Vec<String> = times
        .iter()
        .map(|t| format!("{:.0}", t.as_secs_f64() * 1e3))
        .collect();
    format!("[{}]", each.join(", "))
}

/// What a set of processes has used so far: CPU time (each process with its reaped
/// children, a tool's `rg` say) and time its threads waited on a run queue for a CPU (the
/// second field of `/proc/<pid>/task/<tid>/schedstat`), the OpenCode servers' main
/// threads (named `opencode`, where the agent loop runs) apart. On two cores OpenCode
/// alone keeps both busy in a run, so the waits are where the service's own work shows in
/// OpenCode's time. Waits count living threads only (one that ends within the run leaves
/// its wait out), and are 0 where the kernel keeps no such counts.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu_ms: f64,
    wait_ms: f64,
    main_wait_ms: f64,
}

impl Usage {
    /// What `pids` have used so far.
    fn of(pids: &[u32]) -> Self {
        let mut total = Self {
            cpu_ms: pids.iter().copied().map(cpu_ms).sum(),
            ..Self::default()
        };
        for pid in pids {
            let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for thread in threads.flatten() {
                let path = thread.path();
                let waited_ns = std::fs::read_to_string(path.join("schedstat"))
                    .ok()
                    .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok());
                let Some(waited_ns) = waited_ns else { continue };
                total.wait_ms += waited_ns / 1e6;
                let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                if comm.trim_end() == "opencode" {
                    total.main_wait_ms += waited_ns / 1e6;
                }
            }
        }
        total
    }

    /// What `pid` and its living descendants have used so far.
    fn of_tree(pid: u32) -> Self {
        let mut pids = vec![pid];
        pids.extend(draftsmith_opencode::descendants(pid));
        Self::of(&pids)
    }
}

impl std::ops::Sub for Usage {
    type Output = Self;

    fn sub(self, earlier: Self) -> Self {
        Self {
            cpu_ms: self.cpu_ms - earlier.cpu_ms,
            wait_ms: self.wait_ms - earlier.wait_ms,
            main_wait_ms: self.main_wait_ms - earlier.main_wait_ms,
        }
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, more: Self) {
        self.cpu_ms += more.cpu_ms;
        self.wait_ms += more.wait_ms;
        self.main_wait_ms += more.main_wait_ms;
    }
}

impl std::ops::Div<f64> for Usage {
    type Output = Self;

    fn div(self, runs: f64) -> Self {
        Self {
            cpu_ms: self.cpu_ms / runs,
            wait_ms: self.wait_ms / runs,
            main_wait_ms: self.main_wait_ms / runs,
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
