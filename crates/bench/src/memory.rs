//! Issue #3: the server's memory with 50 concurrent runs. The real release binary on
//! SQLite, its resident set (VmRSS) sampled every 20 ms while 50 runs of a slow script
//! overlap; the baseline is its resident set when idle after start.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use draftsmith_core::RunStatus;
use draftsmith_mockmodel::{MockModel, Script};
use draftsmith_testkit::{ADMIN_TOKEN, ServerProcess, StoreKind, TestDb};
use futures::future::join_all;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::api::{follow, new_app, start_run};
use crate::report::line_mib;

const CONCURRENT: usize = 50;
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

pub async fn run() -> anyhow::Result<()> {
    println!("== memory: server RSS with {CONCURRENT} concurrent runs (release binary, SQLite) ==");
    let binary = server_binary();
    let Ok(binary) = binary.canonicalize() else {
        println!(
            "skipped: no server binary at {}; build it with `cargo build --release -p draftsmith` \
             (or point DRAFTSMITH_BIN at one)",
            binary.display()
        );
        return Ok(());
    };
    let model = MockModel::start(script()?).await?;
    let service = Service::start(&binary, &config_toml(&model.base_url(), "native", true)).await?;
    let (server, pid) = (service.server, service.pid);
    let admin = server.admin();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_mib(pid)?;

    let mut apps = Vec::with_capacity(CONCURRENT);
    for i in 0..CONCURRENT {
        apps.push(new_app(&admin, &format!("memory {i}")).await?);
    }
    let with_apps = rss_mib(pid)?;

    let completed = measure(&admin, &apps, pid, idle, with_apps).await?;
    server.terminate().await;
    if completed != CONCURRENT {
        bail!("only {completed} of {CONCURRENT} runs completed");
    }
    Ok(())
}

/// Runs one slow run on each app at once while sampling the server's resident set, and
/// prints the figures against `idle`; the number of runs that completed.
async fn measure(
    admin: &draftsmith_testkit::ApiClient,
    apps: &[draftsmith_core::api::App],
    pid: u32,
    idle: f64,
    with_apps: f64,
) -> anyhow::Result<usize> {
    let stop = CancellationToken::new();
    let sampler = tokio::spawn(sample(pid, stop.clone()));
    let started = Instant::now();
    let ends = join_all(apps.iter().map(|app| async move {
        let run = start_run(admin, app, "bench-memory: look around").await?;
        follow(admin, &run).await
    }))
    .await;
    let elapsed = started.elapsed();
    stop.cancel();
    let (peak, samples) = sampler.await??;
    let completed = ends
        .iter()
        .filter(|end| matches!(end, Ok(RunStatus::Completed)))
        .count();

    line_mib(
        &format!("RSS after creating {CONCURRENT} apps"),
        with_apps,
        "idle after start",
        idle,
    );
    line_mib(
        &format!("peak RSS, {CONCURRENT} concurrent runs"),
        peak,
        "idle after start",
        idle,
    );
    let per_run = (peak - idle).max(0.0) / CONCURRENT as f64;
    line_mib(
        "per-run increment, (peak − idle) / 50",
        per_run,
        "idle after start",
        idle,
    );
    println!(
        "{completed}/{CONCURRENT} runs completed in {:.2} s ({samples} samples)",
        elapsed.as_secs_f64()
    );
    for end in ends.iter().filter_map(|end| end.as_ref().err()).take(3) {
        println!("  a run failed: {end:#}");
    }
    Ok(completed)
}

/// `DRAFTSMITH_BIN`, else `target/release/draftsmith` (from the current directory, then
/// from the workspace root).
pub fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("DRAFTSMITH_BIN") {
        return path.into();
    }
    let local = PathBuf::from("target/release/draftsmith");
    if local.is_file() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/draftsmith")
}

/// A service configuration with the scripted model as `mock/coder`.
pub fn config_toml(model_base_url: &str, default_engine: &str, verify: bool) -> String {
    format!(
        "[models]\ndefault = \"mock/coder\"\n\n\
         [[providers]]\nid = \"mock\"\nkind = \"openai\"\nbase_url = \"{model_base_url}\"\n\
         models = [\"coder\"]\n\n\
         [coding_agent]\ndefault_engine = \"{default_engine}\"\nnative_enabled = true\n\
         verify = {verify}\n"
    )
}

/// Ten `list` turns and a final answer, streamed slowly enough that 50 runs overlap.
fn script() -> anyhow::Result<Script> {
    let list = json!({"steps": [
        {"text": "Let me look at the files again.", "chunk": 8},
        {"tool_call": {"name": "list", "arguments": {"path": "."}}}
    ]});
    let mut turns = vec![list; 10];
    turns.push(json!({"steps": [{"text": "Everything is where it should be.", "chunk": 8}]}));
    let script = json!({"chunk_delay_ms": 20, "scenarios": [{"name": "memory", "turns": turns}]});
    Ok(Script::from_json(&script.to_string())?)
}

/// The pid of the one `draftsmith` process this process started.
pub fn child_pid() -> anyhow::Result<u32> {
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(me) && head.contains("(draftsmith") {
            return Ok(pid);
        }
    }
    bail!("cannot find the draftsmith server among this process's children")
}

/// The release `draftsmith` serving on a new SQLite database with a configuration file.
pub struct Service {
    /// The process.
    pub server: ServerProcess,
    /// Its pid, for its memory.
    pub pid: u32,
    /// Its database and data directory.
    pub db: TestDb,
    /// The configuration file's directory.
    _config: tempfile::TempDir,
}

impl Service {
    /// Starts `binary` with the configuration `toml`, as the test admin.
    pub async fn start(binary: &Path, toml: &str) -> anyhow::Result<Self> {
        let config = tempfile::tempdir()?;
        let file = config.path().join("draftsmith.toml");
        std::fs::write(&file, toml)?;
        let file = file.to_str().context("temporary path is not UTF-8")?;
        let db = TestDb::new(StoreKind::Sqlite).await;
        let env = [
            ("DRAFTSMITH_CONFIG", file),
            ("DRAFTSMITH_ADMIN_TOKEN", ADMIN_TOKEN),
        ];
        let server = ServerProcess::start_with_env(binary, &db, &env).await;
        let pid = child_pid()?;
        Ok(Self {
            server,
            pid,
            db,
            _config: config,
        })
    }
}

/// VmRSS of `pid`, in MiB.
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")?;
    Ok(kib / 1024.0)
}

/// The CPU time (user and system, in ms) `pid` has used, with that of the children it
/// has reaped (a tool's short-lived `rg` or `git`, say). `/proc` counts it in USER_HZ
/// ticks, 100 a second on Linux whatever the kernel's own tick; 0 once `pid` is gone.
pub fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // `pid (comm) state …`: utime, stime, cutime and cstime are the 12th to 15th fields
    // after the comm, which may hold spaces and parentheses.
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: f64 = after_comm
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    ticks * 10.0
}

/// Samples `pid`'s RSS until `stop`; returns the peak and the number of samples.
async fn sample(pid: u32, stop: CancellationToken) -> anyhow::Result<(f64, usize)> {
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    let (mut peak, mut samples) = (0.0f64, 0usize);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticks.tick() => {
                peak = peak.max(rss_mib(pid)?);
                samples += 1;
            }
        }
    }
    peak = peak.max(rss_mib(pid)?);
    Ok((peak, samples + 1))
}
