//! Issue 15: what the sandbox's trust boundary (its own network namespace, egress only
//! through the proxy) costs, against the same controller with the host's network
//! (`LocalController::with_host_network`), both under bubblewrap with the same identity and
//! limits: a cold start (create + the first command, which makes the namespace and starts
//! the proxy; goal ≤ +50 ms), a warm command (goal ≤ +5 ms), and `npm ci` of the
//! `vite-react` template with an empty npm cache through the proxy against direct.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use draftsmith_sandbox::{
    EgressPolicy, ExecRequest, IsolationMode, LocalController, SandboxController, SandboxId,
};
use tokio_util::sync::CancellationToken;

use crate::report::{line, median_of, medians_interleaved};

/// Cold starts per side.
const COLD: usize = 15;
/// Warm commands per side.
const WARM: usize = 60;
/// `npm ci` runs per side.
const NPM: usize = 3;

pub async fn run() -> anyhow::Result<()> {
    println!("== sandbox boundary: private network and egress proxy against the host's network ==");
    let dir = tempfile::tempdir()?;
    let controller = |name: &str| {
        LocalController::new(
            dir.path().join(name).join("sandboxes"),
            dir.path().join(name).join("cache"),
            IsolationMode::Bwrap,
        )
    };
    let allow = vec![
        draftsmith_sandbox::NpmRegistry::of_host_npm()
            .host()
            .to_owned(),
    ];
    let bounded = controller("bounded")?.with_egress(EgressPolicy::parse("proxy", allow.clone())?);
    let open = controller("open")?.with_host_network();
    println!(
        "egress: {} against {}",
        bounded.egress_in_force(),
        open.egress_in_force()
    );
    cold(&bounded, &open).await?;
    // The fallback of a service that cannot make namespaces: one per process, with a
    // forwarder started in each.
    let per_process = controller("per-process")?
        .with_egress(EgressPolicy::parse("proxy", allow)?)
        .with_namespace_per_process();
    warm(&bounded, &open, &per_process).await?;
    npm_ci(&bounded, &open).await
}

/// Cold starts, alternating between the two controllers.
async fn cold(bounded: &LocalController, open: &LocalController) -> anyhow::Result<()> {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..COLD {
        with.push(cold_start(bounded, &format!("cold-b-{i}")).await?);
        without.push(cold_start(open, &format!("cold-o-{i}")).await?);
    }
    let (with, without) = (
        median_of(with).unwrap_or_default(),
        median_of(without).unwrap_or_default(),
    );
    report(
        "sandbox cold start (create + first command)",
        with,
        without,
        50.0,
    );
    Ok(())
}

/// Warm commands, in turn on each controller.
async fn warm(
    bounded: &LocalController,
    open: &LocalController,
    per_process: &LocalController,
) -> anyhow::Result<()> {
    let warm = [
        (bounded, id("warm-b")?),
        (open, id("warm-o")?),
        (per_process, id("warm-p")?),
    ];
    for (ctl, id) in &warm {
        ctl.create(id, "static", Duration::from_secs(600)).await?;
        for _ in 0..3 {
            exec(ctl, id, "true").await?;
        }
    }
    // The fallback's namespaces are torn down by the kernel after each command, work that
    // would land on the next measurement: it is measured in a round of its own, each round
    // against its own commands without the boundary.
    let mut medians = Vec::new();
    for (name, i) in [
        ("warm command (exec `true`)", 0),
        ("warm command, a namespace per process (fallback)", 2),
    ] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..WARM {
            for (side, times) in [(i, &mut with), (1, &mut without)] {
                let (ctl, id) = &warm[side];
                let started = Instant::now();
                exec(ctl, id, "true").await?;
                times.push(started.elapsed());
            }
        }
        medians.push((
            name,
            median_of(with).unwrap_or_default(),
            median_of(without).unwrap_or_default(),
        ));
    }
    for (n, (name, with, without)) in medians.into_iter().enumerate() {
        if n == 0 {
            report(name, with, without, 5.0);
        } else {
            line(name, with, "without the boundary", without);
        }
    }
    Ok(())
}

/// `npm ci` with an empty npm cache, alternating.
async fn npm_ci(bounded: &LocalController, open: &LocalController) -> anyhow::Result<()> {
    let (b, o) = (id("npm-b")?, id("npm-o")?);
    for (ctl, id) in [(bounded, &b), (open, &o)] {
        ctl.create(id, "vite-react", Duration::from_secs(3600))
            .await?;
        seed_template(ctl, id)?;
    }
    let npm_ci = "rm -rf node_modules \"$HOME/.npm\" && \
                  npm ci --no-audit --no-fund --loglevel=error --cache \"$HOME/.npm\"";
    let (with, without) = medians_interleaved(
        NPM,
        |_| exec(bounded, &b, npm_ci),
        |_| exec(open, &o, npm_ci),
    )
    .await?;
    line(
        "npm ci vite-react (empty cache), through the proxy",
        with,
        "direct (host network)",
        without,
    );
    for (ctl, id) in [(bounded, &b), (open, &o)] {
        ctl.stop(id).await?;
    }
    Ok(())
}

/// The time to a new sandbox's first command's end; the sandbox is stopped after.
async fn cold_start(ctl: &LocalController, name: &str) -> anyhow::Result<Duration> {
    let id = id(name)?;
    let started = Instant::now();
    ctl.create(&id, "static", Duration::from_secs(600)).await?;
    exec(ctl, &id, "true").await?;
    let took = started.elapsed();
    ctl.stop(&id).await?;
    // The kernel tears a stopped sandbox's namespace down afterwards; let it, so the work
    // does not land on the next measurement.
    tokio::time::sleep(Duration::from_millis(150)).await;
    Ok(took)
}

async fn exec(ctl: &LocalController, id: &SandboxId, command: &str) -> anyhow::Result<()> {
    let request = ExecRequest {
        command: command.into(),
        timeout: Duration::from_secs(600),
        max_output_bytes: 16 * 1024,
        env: Vec::new(),
    };
    let out = ctl.exec(id, request, CancellationToken::new()).await?;
    if out.exit_code != Some(0) {
        bail!("{command:?} failed in {id}: {}", out.output);
    }
    Ok(())
}

fn id(name: &str) -> anyhow::Result<SandboxId> {
    Ok(SandboxId::parse(&format!("bench-{name}"))?)
}

/// Writes the `vite-react` template into the sandbox's workspace, readable by its uid.
fn seed_template(ctl: &LocalController, id: &SandboxId) -> anyhow::Result<()> {
    let workspace = ctl.workspace_dir(id).context("a local workspace")?;
    let template = draftsmith_templates::find("vite-react").context("the vite-react template")?;
    for (file, bytes) in template.files() {
        let target = workspace.join(&file);
        std::fs::create_dir_all(target.parent().context("a parent")?)?;
        std::fs::write(target, bytes)?;
    }
    Ok(())
}

/// The ratio line, then the absolute difference against its goal.
fn report(name: &str, with: Duration, without: Duration, goal_ms: f64) {
    line(name, with, "without the boundary", without);
    let extra = (with.as_secs_f64() - without.as_secs_f64()) * 1e3;
    let verdict = if extra <= goal_ms { "met" } else { "MISSED" };
    println!("    boundary cost {extra:+.2} ms (goal ≤ +{goal_ms} ms: {verdict})");
}
