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
