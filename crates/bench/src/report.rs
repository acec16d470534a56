//! Timing helpers and the printed report.

use std::time::{Duration, Instant};

/// Median of `runs` timings of `f`.
pub async fn median<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let start = Instant::now();
        f(i).await?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Medians of `runs` timings of `a` and of `b`, taken alternately so that both see the
/// same conditions on a busy machine.
pub async fn medians_interleaved<A, FutA, B, FutB>(
    runs: usize,
    mut a: A,
    mut b: B,
) -> anyhow::Result<(Duration, Duration)>
where
    A: FnMut(usize) -> FutA,
    FutA: std::future::Future<Output = anyhow::Result<()>>,
    B: FnMut(usize) -> FutB,
    FutB: std::future::Future<Output = anyhow::Result<()>>,
{
    let (mut times_a, mut times_b) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for i in 0..runs {
        let start = Instant::now();
        a(i).await?;
        times_a.push(start.elapsed());
        let start = Instant::now();
        b(i).await?;
        times_b.push(start.elapsed());
    }
    times_a.sort();
    times_b.sort();
    Ok((times_a[runs / 2], times_b[runs / 2]))
}

/// The median of `times`; `None` when there are none.
pub fn median_of(mut times: Vec<Duration>) -> Option<Duration> {
    times.sort();
    times.get(times.len() / 2).copied()
}

/// The median, the lowest and the highest of `values[i] / baselines[i]` over the pairs
/// (`None` without a pair): each value against the baseline measured next to it, so load
/// that drifts between minutes cancels out of every ratio instead of adding to the spread.
pub fn paired_ratios(values: &[Duration], baselines: &[Duration]) -> Option<(f64, f64, f64)> {
    let mut ratios: Vec<f64> = values
        .iter()
        .zip(baselines)
        .map(|(v, b)| v.as_secs_f64() / b.as_secs_f64().max(1e-9))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median = *ratios.get(ratios.len() / 2)?;
    Some((median, *ratios.first()?, *ratios.last()?))
}

/// Prints one result line: a measurement, its baseline and their ratio.
pub fn line(name: &str, value: Duration, baseline_name: &str, baseline: Duration) {
    let ratio = value.as_secs_f64() / baseline.as_secs_f64().max(1e-9);
    println!(
        "{name:<52} {:>10.3} ms   vs {baseline_name:<34} {:>10.3} ms   ratio {ratio:>8.3}",
        value.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3,
    );
}

/// Prints one memory result line: a size in MiB, its baseline and their ratio.
pub fn line_mib(name: &str, value: f64, baseline_name: &str, baseline: f64) {
    let ratio = value / baseline.max(1e-9);
    println!(
        "{name:<52} {value:>10.2} MiB  vs {baseline_name:<34} {baseline:>10.2} MiB  ratio {ratio:>8.3}"
    );
}

/// Prints one counted result line (`unit`: `tok`, `µ$`): a count, its baseline and their
/// ratio.
pub fn line_count(name: &str, value: u64, baseline_name: &str, baseline: u64, unit: &str) {
    let ratio = value as f64 / (baseline as f64).max(1e-9);
    println!(
        "{name:<52} {value:>10} {unit:<3}  vs {baseline_name:<34} {baseline:>10} {unit:<3}  ratio {ratio:>8.3}"
    );
}

/// How long [`wait_for_quiet`] waits at most.
const QUIET_WAIT: Duration = Duration::from_secs(180);
/// Quiet: at most this share of the machine's CPU time busy (steal and I/O wait included)
/// over a second…
const QUIET_BUSY: f64 = 0.10;
/// …and at most this many bytes of written pages still on their way to the disk.
const QUIET_DIRTY: u64 = 32 << 20;

/// Waits until this machine is quiet (see [`QUIET_BUSY`], [`QUIET_DIRTY`]), at most
/// [`QUIET_WAIT`], and prints what it found. The figures of a few milliseconds are
/// measured on a machine at rest: an earlier benchmark's processes, file deletions and
/// page write-back (npm installs, builds, Chromium) go on for minutes after it ends, and
/// a one-step run measured in their wake took several times as long.
pub async fn wait_for_quiet() {
    let started = Instant::now();
    loop {
        let (Some(before), Some(dirty)) = (cpu_times(), dirty_bytes()) else {
            println!("(the machine's load is not readable here: not waiting for it)");
            return;
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(after) = cpu_times() else { return };
        let total = after.0.saturating_sub(before.0).max(1);
        let busy = total.saturating_sub(after.1.saturating_sub(before.1)) as f64 / total as f64;
        let quiet = busy <= QUIET_BUSY && dirty <= QUIET_DIRTY;
        let waited = started.elapsed();
        if quiet || waited >= QUIET_WAIT {
            let state = if quiet { "quiet" } else { "still busy" };
            println!(
                "(machine {state} after {:.0} s: {:.0} % of its CPU busy, {} MiB dirty)",
                waited.as_secs_f64(),
                busy * 100.0,
                dirty >> 20
            );
            return;
        }
    }
}

/// All CPUs' time and their idle time so far, in ticks (`/proc/stat`'s first line).
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total = ticks.iter().take(8).sum();
    Some((total, *ticks.get(3)?))
}

/// Bytes of written pages not yet on the disk (`Dirty` + `Writeback` of `/proc/meminfo`).
fn dirty_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |key: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((kib("Dirty:")? + kib("Writeback:")?) * 1024)
}
