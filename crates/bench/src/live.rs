//! Issue 16: the live preview. The latency from an edit's `tool.completed` to the changed
//! DOM of the preview page in Chromium, through the real proxy and Vite's HMR (goal p50 ≤
//! 300 ms, p95 ≤ 1 s); the dev server's cold start in its sandbox (the shared dependency
//! cache linked) against a bare `npx vite` in the same workspace (goal ≤ 1.2×); and the
//! memory of a warm preview's dev server against the bare one's.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use draftsmith_core::EventBody;
use draftsmith_sandbox::{
    DevServerSpec, DevServerState, HMR_PATH, IsolationMode, LIVE_BASE, LocalController,
    SandboxController, SandboxId,
};
use draftsmith_testkit::sse::collect;
use draftsmith_testkit::{Browser, StoreKind, TestServer};
use serde_json::{Value, json};

use crate::memory::rss_mib;
use crate::report::{line, line_mib};

/// Cold starts per side.
const COLD: usize = 5;
/// Edits measured.
const EDITS: usize = 20;

pub async fn run() -> anyhow::Result<()> {
    println!("== live preview: edit to DOM, dev server cold start and memory ==");
    cold_start().await?;
    edit_latency().await
}

fn spec() -> anyhow::Result<DevServerSpec> {
    let template = draftsmith_templates::find("vite-react").context("vite-react")?;
    let draftsmith_templates::Live::DevServer(dev) = template.live else {
        bail!("vite-react has no dev server");
    };
    Ok(DevServerSpec {
        command: dev.command.into(),
        port: dev.port,
        env: vec![
            ("DRAFTSMITH_PREVIEW_BASE".into(), LIVE_BASE.into()),
            ("DRAFTSMITH_PREVIEW_HMR_PATH".into(), HMR_PATH.into()),
        ],
    })
}

/// The dev server in its sandbox against `npx vite` on the host, alternately, after one
/// warm-up each (Vite's dependency pre-bundling, shared by both, is then done).
async fn cold_start() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ctl = LocalController::new(
        dir.path().join("sandboxes"),
        dir.path().join("cache"),
        IsolationMode::Bwrap,
    )?;
    let id = SandboxId::parse("bench-live")?;
    ctl.create(&id, "vite-react", Duration::from_secs(3600))
        .await?;
    let workspace = ctl.workspace_dir(&id).context("a local workspace")?;
    let template = draftsmith_templates::find("vite-react").context("vite-react")?;
    for (file, bytes) in template.files() {
        let target = workspace.join(&file);
        std::fs::create_dir_all(target.parent().context("a parent")?)?;
        std::fs::write(target, bytes)?;
    }
    ctl.prepare_dependencies(&id).await?;
    let spec = spec()?;
    let (mut sandboxed, mut bare, mut node) = (Vec::new(), Vec::new(), Vec::new());
    let (mut sandboxed_mib, mut bare_mib) = (0.0, 0.0);
    for round in 0..=COLD {
        let started = Instant::now();
        let status = ctl
            .dev_server(&id, Some(&spec))
            .await?
            .context("a dev server")?;
        if status.state != DevServerState::Live {
            bail!("the dev server did not start: {:?}", status.output);
        }
        let took = started.elapsed();
        sandboxed_mib = tree_rss(status.pid);
        ctl.stop_dev_server(&id).await?;
        let (bare_took, mib) = bare_vite(&workspace, &["npx", "vite"]).await?;
        let node_vite = ["node", "node_modules/vite/bin/vite.js"];
        let (node_took, _) = bare_vite(&workspace, &node_vite).await?;
        if round > 0 {
            sandboxed.push(took);
            bare.push(bare_took);
            node.push(node_took);
        }
        bare_mib = mib;
    }
    for times in [&mut sandboxed, &mut bare, &mut node] {
        times.sort();
    }
    let (with, without) = (sandboxed[COLD / 2], bare[COLD / 2]);
    line(
        "dev server cold start in its sandbox",
        with,
        "bare `node …/vite.js` (no npx)",
        node[COLD / 2],
    );
    line(
        "dev server cold start in its sandbox",
        with,
        "bare `npx vite`",
        without,
    );
    let ratio = with.as_secs_f64() / without.as_secs_f64().max(1e-9);
    let verdict = if ratio <= 1.2 { "met" } else { "MISSED" };
    println!("    ratio {ratio:.2} (goal ≤ 1.2: {verdict})");
    line_mib(
        "memory of a warm preview's dev server",
        sandboxed_mib,
        "bare `npx vite`",
        bare_mib,
    );
    ctl.stop(&id).await?;
    Ok(())
}

/// Starts Vite by `argv` in `workspace` on a free port, times it until it answers, measures its
/// tree's memory, and kills it.
async fn bare_vite(workspace: &std::path::Path, argv: &[&str]) -> anyhow::Result<(Duration, f64)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(argv[0])
        .args(&argv[1..])
        .args([
            "--host",
            "127.0.0.1",
            "--strictPort",
            "--port",
            &port.to_string(),
        ])
        .current_dir(workspace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    loop {
        if http.get(&url).send().await.is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("npx vite did not answer");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    let pid = child.id().context("a pid")?;
    let mib = tree_rss(pid);
    draftsmith_process::kill_tree(pid);
    let _ = child.wait().await;
    Ok((took, mib))
}

/// The resident memory of `pid` and its descendants, in MiB.
fn tree_rss(pid: u32) -> f64 {
    std::iter::once(pid)
        .chain(draftsmith_process::descendants(pid))
        .filter_map(|p| rss_mib(p).ok())
        .sum()
}

/// The scripted model: a quick first answer, then edit `i` writes `src/App.jsx` with the
/// heading `Edit i` (its turn: one per earlier run's assistant message in the history).
fn script() -> String {
    let quick = json!({"steps": [{"text": "Ready."}]});
    let mut scenarios: Vec<Value> = (0..EDITS)
        .rev()
        .map(|i| {
            let content = format!(
                "export default function App() {{\n  return (\n    <main className=\"app\">\n      <h1>Edit {i}</h1>\n    </main>\n  );\n}}\n"
            );
            let write = json!({"steps": [{"tool_call": {"name": "write", "arguments": {"path": "src/App.jsx", "content": content}}}]});
            // Every earlier run's answer is in the history (whole recent turns, small here).
            let earlier = i + 1;
            let mut turns = vec![quick.clone(); earlier];
            turns.push(write);
            turns.push(json!({"steps": [{"text": "Done."}]}));
            json!({"name": format!("edit-{i}"), "match": {"contains": format!("ZEDIT{i}.")}, "turns": turns})
        })
        .collect();
    scenarios.push(json!({"name": "quick", "turns": [quick]}));
    json!({"scenarios": scenarios}).to_string()
}

/// Runs that each write `src/App.jsx`, the preview page open in Chromium: from each edit's
/// `tool.completed` to the page's DOM showing it (both clocks are this machine's).
async fn edit_latency() -> anyhow::Result<()> {
    let server = TestServer::with_script(StoreKind::Sqlite, &script()).await;
    let admin = server.admin();
    let app: Value = admin
        .post(
            "/admin/apps",
            &json!({"name": "Bench", "template": "vite-react"}),
            201,
        )
        .await;
    let app_id = app["id"].as_str().context("an app id")?.to_owned();
    let runs = format!("/admin/apps/{app_id}/coding-agent/runs");
    let first: Value = admin.post(&runs, &json!({"input": "hello"}), 201).await;
    let session = first["chat_session_id"].clone();
    collect(
        &admin,
        first["stream_url"].as_str().context("a stream")?,
        None,
    )
    .await;
    let preview: Value = admin
        .post(
            &format!("/admin/apps/{app_id}/preview?live=true"),
            &json!({}),
            200,
        )
        .await;
    let url = format!(
        "{}{}",
        server.base_url,
        preview["url"].as_str().context("a url")?
    );
    let browser = Browser::start().await;
    browser.goto(&url).await;
    browser
        .wait_for(
            "the app",
            "return document.querySelector('main.app h1')?.textContent === 'My App'",
            json!([]),
        )
        .await;
    browser
        .js(
            "window.__kept = 1; window.__seen = {}; new MutationObserver(() => { const t = document.querySelector('main.app h1')?.textContent; if (t && !(t in window.__seen)) window.__seen[t] = Date.now(); }).observe(document.body, {subtree: true, childList: true, characterData: true});",
            json!([]),
        )
        .await;
    let mut latencies = Vec::new();
    for i in 0..EDITS {
        let run: Value = admin
            .post(
                &runs,
                &json!({"input": format!("ZEDIT{i}. change it"), "chat_session_id": session}),
                201,
            )
            .await;
        let events = collect(
            &admin,
            run["stream_url"].as_str().context("a stream")?,
            None,
        )
        .await;
        let completed = events
            .iter()
            .find(|e| matches!(e.body, EventBody::ToolCompleted { .. }))
            .context("a tool.completed event")?;
        let heading = format!("Edit {i}");
        let seen_ms = seen_at(&browser, &heading).await?;
        let completed_ms = completed.ts.as_micros() as f64 / 1e3;
        latencies.push(Duration::from_secs_f64(
            ((seen_ms - completed_ms).max(0.0)) / 1e3,
        ));
    }
    browser.quit().await;
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p95 = latencies[(latencies.len() * 95 / 100).min(latencies.len() - 1)];
    line(
        "tool.completed → changed DOM, p50",
        p50,
        "goal",
        Duration::from_millis(300),
    );
    line(
        "tool.completed → changed DOM, p95",
        p95,
        "goal",
        Duration::from_millis(1000),
    );
    server.shutdown().await;
    Ok(())
}

/// When the page first showed `heading` (its clock), waiting at most 30 s; a page that
/// reloaded (its marker gone) or never showed it is an error naming what it shows.
async fn seen_at(browser: &Browser, heading: &str) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = browser
            .js(
                "return [window.__kept === 1, window.__seen && window.__seen[arguments[0]], document.querySelector('main.app h1')?.textContent]",
                json!([heading]),
            )
            .await;
        if let (Some(true), Some(at)) = (page[0].as_bool(), page[1].as_f64()) {
            return Ok(at);
        }
        if Instant::now() > deadline {
            bail!("the page never showed {heading:?} without a reload: {page}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
