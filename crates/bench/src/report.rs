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
        "{name:<52} {value:>10.1} MiB  vs {baseline_name:<34} {baseline:>10.1} MiB  ratio {ratio:>8.3}"
    );
}
