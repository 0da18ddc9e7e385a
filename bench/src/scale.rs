//! Scale: the same reads and fetches with ten pending tasks and with a million. A task read
//! is one HGETALL, a queue count one LLEN, a fetch pops from the list's end: none of them
//! should slow down as the queue grows. Redis memory should grow linearly.

use std::time::{Duration, Instant};

use celeriac::broker::{Claim, NewTask};
use celeriac::{Broker, QueueName, TaskId};
use serde_json::Value;

use crate::redis_stats;
use crate::report::Report;

const SAMPLES: usize = 200;

/// Measures at 10 pending tasks, then fills the queue to `n` and measures again.
pub async fn run(broker: &Broker, report: &mut Report, n: usize) -> anyhow::Result<()> {
    let queue = QueueName::parse("bench-scale").map_err(anyhow::Error::msg)?;
    let mut conn = broker.connection();
    let base_memory = redis_stats::used_memory(&mut conn).await?;
    let mut ids: Vec<TaskId> = Vec::new();
    let mut filled = 0;
    for target in [10, n] {
        let started = Instant::now();
        while filled < target {
            let size = (target - filled).min(1000);
            let batch: Vec<NewTask> = (0..size).map(|_| NewTask::new(&queue, "noop", &Value::Null)).collect();
            broker.enqueue(&queue, &batch, 0, None).await?;
            if ids.len() < SAMPLES {
                ids.extend(batch.iter().take(SAMPLES - ids.len()).map(|t| t.id.clone()));
            }
            filled += size;
        }
        if target == n {
            report.add(
                &format!("scale: enqueue {n} tasks in batches of 1000"),
                n as f64 / started.elapsed().as_secs_f64(),
                "tasks/s",
            );
            let memory = redis_stats::used_memory(&mut conn).await?;
            report.add(
                &format!("scale: Redis memory for {n} pending tasks"),
                (memory - base_memory) as f64 / 1e6,
                "MB",
            );
            report.add(
                &format!("scale: Redis memory per pending task at {n}"),
                (memory - base_memory) as f64 / n as f64,
                "bytes",
            );
        }
        let read = time_each(&ids, |id| {
            let broker = broker.clone();
            async move { broker.get(&id).await.map(drop) }
        })
        .await?;
        let pending_key = broker.keys().pending(&queue);
        let count = time_each(&ids, |_| {
            let mut conn = broker.connection();
            let key = pending_key.clone();
            async move {
                redis::AsyncCommands::llen::<_, u64>(&mut conn, key)
                    .await
                    .map(drop)
                    .map_err(Into::into)
            }
        })
        .await?;
        let fetch = time_each(&ids[..50.min(ids.len())], |_| {
            let (broker, queue) = (broker.clone(), queue.clone());
            async move {
                let Claim::Ids(claimed) = broker
                    .claim(
                        &queue,
                        "bench-scale",
                        10,
                        Duration::from_secs(30),
                        &celeriac::broker::new_claim_token(),
                    )
                    .await?
                else {
                    return Ok(());
                };
                broker.start(&queue, "bench-scale", &claimed).await?;
                broker.requeue_own(&queue, "bench-scale", &claimed).await?;
                Ok(())
            }
        })
        .await?;
        report.add(&format!("scale: GET a task record with {target} pending, p50"), read, "ms");
        report.add(&format!("scale: count the queue with {target} pending, p50"), count, "ms");
        report.add(
            &format!("scale: fetch 10 (claim + start, then give back) with {target} pending, p50"),
            fetch,
            "ms",
        );
    }
    redis::cmd("DEL")
        .arg(broker.keys().pending(&queue))
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

/// Median time of one call per item, called one after another.
async fn time_each<T: Clone, F, Fut>(items: &[T], mut call: F) -> anyhow::Result<f64>
where
    F: FnMut(T) -> Fut,
    Fut: std::future::Future<Output = Result<(), celeriac::BrokerError>>,
{
    let mut samples = Vec::with_capacity(items.len());
    for item in items {
        let t0 = Instant::now();
        call(item.clone()).await?;
        samples.push(t0.elapsed());
    }
    samples.sort();
    Ok(samples[samples.len() / 2].as_secs_f64() * 1e3)
}
