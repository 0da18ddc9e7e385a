//! `--push`: the cost of running a task as a remote (pushed) task type against running it
//! natively. One worker process drains `n` native no-op tasks, then `n` tasks of a remote
//! type whose endpoint (in this process, on loopback) answers `{}` at once; the difference of
//! the drain times per task is the push path's overhead (signing, the HTTP round trip, the
//! catalogue lookup), at the same concurrency.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use celeriac::broker::NewTask;
use celeriac::remote::RemoteTaskType;
use celeriac::{Broker, QueueName};
use serde_json::json;

use crate::keyspace;
use crate::measures::Bench;
use crate::redis_stats::{self, PhaseCost};

impl Bench {
    pub async fn push(&mut self, n: usize, concurrency: usize) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/run", listener.local_addr()?);
        let app = Router::new().route("/run", post(|| async { axum::Json(json!({})) }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let ty = RemoteTaskType {
            name: "bench_push".into(),
            queue: "bench-push".into(),
            url,
            timeout: 30.0,
            secret: "a-bench-secret-of-16+".into(),
            max_answer_bytes: 1024,
            options: Default::default(),
        };
        self.broker.put_task_type(&ty).await?;
        let native = self.drain_one("bench-native", "noop", n, concurrency, &[]).await?;
        let pushed = self.drain_one("bench-push", "bench_push", n, concurrency, &[]).await?;
        let per_task = |d: &Drained| d.took.as_secs_f64() * 1e6 / n as f64;
        self.report.add(
            &format!("drain, native no-op tasks, 1 worker, concurrency {concurrency}"),
            native.rate(n),
            "tasks/s",
        );
        self.report.add(
            &format!("drain, pushed tasks (loopback endpoint), 1 worker, concurrency {concurrency}"),
            pushed.rate(n),
            "tasks/s",
        );
        self.report.add(
            "push overhead per task (drain time, pushed minus native)",
            per_task(&pushed) - per_task(&native),
            "µs",
        );
        Ok(())
    }

    /// Enqueues `n` tasks of `task` on `queue`, starts one worker on it (with `extra`
    /// settings) and waits until all succeeded: the time from the worker's start to the last
    /// success, and Redis' cost over that time (anything else running then, an archiver for
    /// one, included). Then deletes the tasks' records, so that each drain of a run starts on
    /// a keyspace of the same size (keyspace.rs).
    pub async fn drain_one(
        &self,
        queue: &str,
        task: &str,
        n: usize,
        concurrency: usize,
        extra: &[(&'static str, String)],
    ) -> anyhow::Result<Drained> {
        let q = QueueName::parse(queue).expect("valid queue");
        enqueue(&self.broker, &q, task, n).await?;
        let mut conn = self.broker.connection();
        let keys_at_start: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await?;
        let phase = redis_stats::Phase::open(&mut conn).await?;
        let concurrency = concurrency.to_string();
        let started = Instant::now();
        let worker = self.spawn_with("celeriac-worker", &["--queues", queue, "--concurrency", &concurrency], extra)?;
        let stats = self.broker.keys().stats(&q);
        let deadline = started + Duration::from_secs(300);
        loop {
            let done: Option<u64> = redis::AsyncCommands::hget(&mut conn, &stats, "succeeded").await?;
            if done.unwrap_or(0) >= n as u64 {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the {task} drain did not finish");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let took = started.elapsed();
        let redis = phase.close(&mut conn, n).await?;
        worker.stop();
        keyspace::forget_records(&self.broker, &q).await?;
        Ok(Drained {
            took,
            redis,
            keys_at_start,
        })
    }
}

/// A drain of [`Bench::drain_one`].
pub struct Drained {
    /// From the worker's start to the last success.
    pub took: Duration,
    /// Redis' cost over that time, per task.
    pub redis: PhaseCost,
    /// Keys in Redis when the worker started, the drain's own pending tasks included.
    pub keys_at_start: u64,
}

impl Drained {
    /// Tasks a second.
    pub fn rate(&self, n: usize) -> f64 {
        n as f64 / self.took.as_secs_f64()
    }
}

async fn enqueue(broker: &Broker, q: &QueueName, task: &str, n: usize) -> anyhow::Result<()> {
    let mut left = n;
    while left > 0 {
        let size = left.min(100);
        let tasks: Vec<NewTask> = (0..size).map(|_| NewTask::new(q, task, &json!({}))).collect();
        broker.enqueue(q, &tasks, 0, None).await?;
        left -= size;
    }
    Ok(())
}
