//! `--limits`: the drain of no-op tasks on a queue without limits, then under a concurrency
//! cap, then the rate a rate limit lets through with four worker processes claiming, second
//! by second, all in one run on one redis-server. The unlimited drain beside the limited
//! ones is the check that a queue without limits does not pay for them (compare it with the
//! plain `--drain` of an earlier build on the same machine: `bench/compare/guard.sh`).

use std::time::{Duration, Instant};

use celeriac::broker::{LimitsSource, QueueLimits};
use celeriac::{Broker, QueueName};
use serde_json::Value;

use crate::measures::enqueue_noops;
use crate::procs;
use crate::report::Report;

/// Sizes of the limits run.
#[derive(Debug, Clone, Copy)]
pub struct LimitsSizes {
    /// No-op tasks drained without limits and under the cap.
    pub tasks: usize,
    /// Slots of each worker process.
    pub concurrency: usize,
    /// The concurrency cap of the capped drain.
    pub cap: u32,
    /// The rate limit's tasks per second, and how long its rate is measured.
    pub rate: u32,
    pub rate_secs: u64,
}

pub async fn run(broker: &Broker, env: &[(&'static str, String)], report: &mut Report, sizes: LimitsSizes) -> anyhow::Result<()> {
    let plain = drain(broker, env, "limits-none", None, sizes).await?;
    report.add(
        &format!("drain without limits, 1 worker, concurrency {}", sizes.concurrency),
        plain,
        "tasks/s",
    );
    let cap = QueueLimits {
        concurrency: Some(sizes.cap),
        ..Default::default()
    };
    let capped = drain(broker, env, "limits-cap", Some(cap), sizes).await?;
    report.add(
        &format!(
            "drain under a concurrency cap of {}, 1 worker, concurrency {}",
            sizes.cap, sizes.concurrency
        ),
        capped,
        "tasks/s",
    );
    rate(broker, env, report, sizes).await
}

/// Drains `sizes.tasks` no-op tasks from `name` (with `limits`) with one worker; tasks/s.
async fn drain(
    broker: &Broker,
    env: &[(&'static str, String)],
    name: &str,
    limits: Option<QueueLimits>,
    sizes: LimitsSizes,
) -> anyhow::Result<f64> {
    let queue = QueueName::parse(name).map_err(anyhow::Error::msg)?;
    if let Some(limits) = &limits {
        broker.set_limits(&queue, limits, LimitsSource::Api).await?;
    }
    enqueue_noops(broker, &queue, sizes.tasks, 100, &Value::Null).await?;
    let concurrency = sizes.concurrency.to_string();
    let started = Instant::now();
    let worker = procs::spawn("celeriac-worker", &["--queues", name, "--concurrency", &concurrency], env)?;
    wait_succeeded(broker, &queue, sizes.tasks as u64, Duration::from_secs(300)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    worker.stop();
    Ok(sizes.tasks as f64 / elapsed)
}

async fn succeeded(broker: &Broker, queue: &QueueName) -> anyhow::Result<u64> {
    let done: Option<u64> = redis::AsyncCommands::hget(&mut broker.connection(), broker.keys().stats(queue), "succeeded").await?;
    Ok(done.unwrap_or(0))
}

async fn wait_succeeded(broker: &Broker, queue: &QueueName, n: u64, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while succeeded(broker, queue).await? < n {
        anyhow::ensure!(Instant::now() < deadline, "{queue}: not drained in {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Four workers under a rate limit of `sizes.rate`/s with a backlog: the tasks run in each
/// second after the first (which also has the burst), their mean, lowest and highest.
async fn rate(broker: &Broker, env: &[(&'static str, String)], report: &mut Report, sizes: LimitsSizes) -> anyhow::Result<()> {
    let queue = QueueName::parse("limits-rate").map_err(anyhow::Error::msg)?;
    let limits = QueueLimits {
        rate: Some(format!("{}/s", sizes.rate)),
        ..Default::default()
    };
    broker.set_limits(&queue, &limits, LimitsSource::Api).await?;
    let total = sizes.rate as usize * (sizes.rate_secs as usize + 2) + 100;
    enqueue_noops(broker, &queue, total, 100, &Value::Null).await?;
    let concurrency = sizes.concurrency.to_string();
    let workers = (0..4)
        .map(|_| procs::spawn("celeriac-worker", &["--queues", "limits-rate", "--concurrency", &concurrency], env))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Counted from the first run on, once a second, on the counter finish.lua keeps.
    wait_succeeded(broker, &queue, 1, Duration::from_secs(60)).await?;
    let start = Instant::now();
    let mut last = succeeded(broker, &queue).await?;
    let mut per_second = Vec::new();
    for s in 1..=sizes.rate_secs + 1 {
        tokio::time::sleep_until((start + Duration::from_secs(s)).into()).await;
        let now = succeeded(broker, &queue).await?;
        per_second.push(now - last);
        last = now;
    }
    workers.into_iter().for_each(procs::Proc::stop);
    let steady = &per_second[1..];
    let mean = steady.iter().sum::<u64>() as f64 / steady.len() as f64;
    let label = format!(
        "rate limit {}/s, 4 workers of concurrency {}, over {} s",
        sizes.rate,
        sizes.concurrency,
        steady.len()
    );
    report.add(&format!("{label}: mean"), mean, "tasks/s");
    report.add(
        &format!("{label}: lowest second"),
        *steady.iter().min().unwrap_or(&0) as f64,
        "tasks",
    );
    report.add(
        &format!("{label}: highest second"),
        *steady.iter().max().unwrap_or(&0) as f64,
        "tasks",
    );
    println!("{label}, per second: {per_second:?}");
    Ok(())
}
