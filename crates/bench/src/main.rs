//! draftsmith's benchmarks. Each reports ratios against a baseline measured in the same
//! run, so the numbers mean the same on any machine. `cargo run --release -p
//! draftsmith-bench -- <name>`; `all` runs every one.

mod accounting;
mod api;
mod boundary;
mod caching;
mod checkpoints;
mod drafts;
mod live;
mod memory;
mod opencode;
mod phases;
mod publish;
mod replay;
mod report;
mod runs;
mod sandbox;

use anyhow::bail;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    // `--quick`: few iterations, for a smoke test in a debug build (where supported).
    let quick = std::env::args().any(|a| a == "--quick");
    match which.as_str() {
        "accounting" => accounting::run(quick).await,
        "drafts" => drafts::run().await,
        "checkpoints" => checkpoints::run().await,
        "sandbox" => sandbox::run().await,
        "sandbox-boundary" => boundary::run().await,
        "runs" => {
            runs::run().await?;
            memory::run().await
        }
        "opencode" => opencode::run().await,
        "publish" => publish::run().await,
        "caching" => caching::run().await,
        "live-preview" => live::run().await,
        "all" => {
            // The figures of a few milliseconds first, then OpenCode, then the benchmarks
            // that churn hundreds of megabytes of files, processes and cgroups (npm
            // installs, Vite, Chromium): they leave this machine slower for minutes after
            // they end (a one-step run measured 3.7 ms before the boundary benchmark and
            // 20 ms after it, its raw model call 0.35 ms and 2.7 ms). The benchmarks of such
            // figures also wait for a quiet machine before they measure (`wait_for_quiet`), as
            // a second `all` follows the first's churn.
            runs::run().await?;
            memory::run().await?;
            accounting::run(quick).await?;
            drafts::run().await?;
            checkpoints::run().await?;
            caching::run().await?;
            opencode::run().await?;
            sandbox::run().await?;
            boundary::run().await?;
            live::run().await?;
            publish::run().await
        }
        other => {
            bail!(
                "unknown benchmark {other:?}; known: drafts, checkpoints, sandbox, sandbox-boundary, runs, accounting, caching, live-preview, opencode, publish, all"
            )
        }
    }
}
