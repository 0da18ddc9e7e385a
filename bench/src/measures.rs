//! The measurements. Each is bounded in count and time and talks only to loopback.

use std::time::{Duration, Instant};

use celeriac::broker::NewTask;
use celeriac::{Broker, QueueName};
use serde_json::Value;

use crate::procs::{self, Proc};
use crate::redis_stats;
use crate::report::Report;

/// Sizes of a run: the full run and the CI smoke run differ only here.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub enqueue: usize,
    pub drain: usize,
    pub latency: usize,
    pub http: Duration,
    pub idle: Duration,
    pub concurrency: usize,
    /// Worker processes for the drain, each with `concurrency` slots.
    pub workers: usize,
    pub connections: usize,
    /// Tasks a second that other producers enqueue while latency is measured under load.
    pub load_per_second: u32,
}

pub struct Bench {
    pub broker: Broker,
    pub redis_url: String,
    pub namespace: String,
    pub sizes: Sizes,
    pub report: Report,
}

pub(crate) fn queue(name: &str) -> QueueName {
    QueueName::parse(name).expect("valid queue")
}

impl Bench {
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CELERIAC__REDIS__URL", self.redis_url.clone()),
            ("CELERIAC__REDIS__NAMESPACE", self.namespace.clone()),
        ]
    }

    /// Enqueue through the library: single tasks from concurrent callers (pipelined on one
    /// connection), then batches of 100 and of 1000.
    pub async fn enqueue(&mut self) -> anyhow::Result<()> {
        let q = queue("bench-enqueue");
        let total = self.sizes.enqueue;
        let callers = 64;
        let per_caller = total / callers;
        let started = Instant::now();
        let calls = (0..callers).map(|_| {
            let (broker, q) = (self.broker.clone(), q.clone());
            async move {
                for _ in 0..per_caller {
                    broker.enqueue(&q, &[NewTask::new(&q, "noop", &Value::Null)], 0, None).await?;
                }
                anyhow::Ok(())
            }
        });
        for r in futures::future::join_all(calls).await {
            r?;
        }
        let rate = (per_caller * callers) as f64 / started.elapsed().as_secs_f64();
        self.report.add("enqueue, one per call, 64 concurrent callers", rate, "tasks/s");

        let single = total / 10;
        let started = Instant::now();
        for _ in 0..single {
            self.broker.enqueue(&q, &[NewTask::new(&q, "noop", &Value::Null)], 0, None).await?;
        }
        let rate = single as f64 / started.elapsed().as_secs_f64();
        self.report
            .add("enqueue, one per call, 1 caller (as the peers measure it)", rate, "tasks/s");

        for callers in [1usize, 4] {
            self.enqueue_batches(100, callers).await?;
        }
        Ok(())
    }

    /// Enqueue in batches of 1000, the size of BullMQ's addBulk in the peers. Run after the
    /// drain: its tasks would otherwise change how many keys Redis holds when the drain
    /// measures memory per pending task, and with it whether Redis' key table doubles inside
    /// that measurement (it did: 323 bytes a task instead of 302).
    pub async fn enqueue_bulk(&mut self) -> anyhow::Result<()> {
        self.enqueue_batches(1000, 1).await
    }

    /// `callers` concurrent callers, each enqueuing no-op tasks in batches of `batch`.
    async fn enqueue_batches(&mut self, batch: usize, callers: usize) -> anyhow::Result<()> {
        let q = queue("bench-enqueue");
        let batches = (self.sizes.enqueue / batch / callers).max(1);
        let started = Instant::now();
        let calls = (0..callers).map(|_| {
            let (broker, q) = (self.broker.clone(), q.clone());
            async move { enqueue_noops(&broker, &q, batches * batch, batch, &Value::Null).await }
        });
        for r in futures::future::join_all(calls).await {
            r?;
        }
        let rate = (batches * callers * batch) as f64 / started.elapsed().as_secs_f64();
        self.report
            .add(&format!("enqueue, batches of {batch}, {callers} caller(s)"), rate, "tasks/s");
        Ok(())
    }

    /// Fills a queue with no-op tasks, then starts the worker processes and times them to the
    /// last result; Redis memory per pending task, CPU and commands per task on the way.
    /// Returns the first (now idle) worker for the latency measurements; the others stop.
    async fn drain(&mut self) -> anyhow::Result<Proc> {
        let q = queue("bench");
        let n = self.sizes.drain;
        let mut conn = self.broker.connection();
        let memory_before = redis_stats::used_memory(&mut conn).await?;
        // The yardstick's payload and batches of 100, so memory and Redis' cost of an enqueue
        // compare like for like.
        let phase = redis_stats::Phase::open(&mut conn).await?;
        enqueue_noops(&self.broker, &q, n, 100, &email_payload()).await?;
        let enqueued = phase.close(&mut conn, n).await?;
        let memory_after = redis_stats::used_memory(&mut conn).await?;
        self.report.add(
            "Redis memory per pending task (a 73-byte e-mail payload)",
            (memory_after.saturating_sub(memory_before)) as f64 / n as f64,
            "bytes",
        );
        self.report
            .add("Redis CPU per task, enqueue in batches of 100", enqueued.cpu_us, "µs");
        enqueued.print_profile("the enqueue");

        let phase = redis_stats::Phase::open(&mut conn).await?;
        let concurrency = self.sizes.concurrency.to_string();
        let workers = (0..self.sizes.workers)
            .map(|_| {
                procs::spawn(
                    "celeriac-worker",
                    &["--queues", "bench", "--concurrency", &concurrency],
                    &self.env(),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let stats_key = self.broker.keys().stats(&q);
        let (mut first, mut first_at) = (0u64, None);
        let deadline = Instant::now() + Duration::from_secs(300);
        let done_at = loop {
            let done: Option<u64> = redis::AsyncCommands::hget(&mut conn, &stats_key, "succeeded").await?;
            let done = done.unwrap_or(0);
            if done > 0 && first_at.is_none() {
                first_at = Some(Instant::now());
                first = done;
            }
            if done >= n as u64 {
                break Instant::now();
            }
            anyhow::ensure!(Instant::now() < deadline, "drain did not finish: {done} of {n}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let first_at = first_at.unwrap_or(done_at);
        let elapsed = done_at.duration_since(first_at).as_secs_f64().max(1e-3);
        let processes = match workers.len() {
            1 => "1 worker process".to_owned(),
            w => format!("{w} worker processes"),
        };
        self.report.add(
            &format!("drain, no-op tasks, {processes}, concurrency {concurrency}"),
            (n as u64 - first) as f64 / elapsed,
            "tasks/s",
        );
        if let Some(threads) = procs::worker_threads() {
            self.report
                .add("worker runtime threads (`--worker-threads`)", threads as f64, "threads");
        }
        let worker_cpu: Duration = workers.iter().map(Proc::cpu).sum();
        let drained = phase.close(&mut conn, n).await?;
        self.report.add(
            "worker CPU per task (whole drain, incl. start-up)",
            worker_cpu.as_secs_f64() * 1e6 / n as f64,
            "µs",
        );
        self.report.add("Redis CPU per task (fetch + start + ack)", drained.cpu_us, "µs");
        self.report.add(
            "Redis commands per task (fetch + start + ack, run inside scripts)",
            drained.commands,
            "commands",
        );
        self.report.add(
            "Redis CPU per task, whole lifecycle (enqueue to acknowledged result)",
            enqueued.cpu_us + drained.cpu_us,
            "µs",
        );
        drained.print_profile("the drain");
        let peak_rss = workers.iter().map(|w| w.rss().1).max().unwrap_or(0);
        self.report.add("worker peak RSS after the drain", peak_rss as f64 / 1e6, "MB");
        let mut workers = workers.into_iter();
        let first_worker = workers.next().expect("at least one worker");
        workers.for_each(Proc::stop);
        Ok(first_worker)
    }

    /// The drain, then the latency measures on its first worker, which stops after them;
    /// then the same latency measures on the latency yardstick (latency.rs).
    pub async fn drain_then_latency(&mut self) -> anyhow::Result<()> {
        let worker = self.drain().await?;
        self.latency(&worker).await?;
        worker.stop();
        self.latency_floor().await
    }

    /// `POST /emails` against the gateway process at N connections.
    pub async fn http(&mut self) -> anyhow::Result<()> {
        let port = celeriac_testkit::free_port();
        let mut env = self.env();
        env.push(("CELERIAC__HTTP__BIND", format!("127.0.0.1:{port}")));
        let gateway = procs::spawn("celeriac-api", &[], &env)?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().pool_max_idle_per_host(self.sizes.connections).build()?;
        let until = Instant::now() + Duration::from_secs(10);
        while client.get(format!("{base}/healthz")).send().await.is_err() {
            anyhow::ensure!(Instant::now() < until, "the gateway did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.report.add("gateway RSS at rest", gateway.rss().0 as f64 / 1e6, "MB");
        let body = serde_json::json!({"to": "ada@example.com", "subject": "Hello", "body": "A short message."});
        let end = Instant::now() + self.sizes.http;
        let loops = (0..self.sizes.connections).map(|_| {
            let (client, url, body) = (client.clone(), format!("{base}/emails"), body.clone());
            async move {
                let mut latencies = Vec::new();
                while Instant::now() < end {
                    let t0 = Instant::now();
                    let response = client.post(&url).json(&body).send().await?;
                    anyhow::ensure!(response.status() == 202, "POST /emails answered {}", response.status());
                    latencies.push(t0.elapsed());
                }
                anyhow::Ok(latencies)
            }
        });
        let started = Instant::now();
        let mut all = Vec::new();
        for r in futures::future::join_all(loops).await {
            all.extend(r?);
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.sort();
        let c = self.sizes.connections;
        self.report
            .add(&format!("HTTP POST /emails, {c} connections"), all.len() as f64 / elapsed, "req/s");
        self.report
            .add(&format!("HTTP POST /emails, {c} connections, p50"), percentile(&all, 0.50), "ms");
        self.report
            .add(&format!("HTTP POST /emails, {c} connections, p99"), percentile(&all, 0.99), "ms");
        self.report.add("gateway peak RSS under load", gateway.rss().1 as f64 / 1e6, "MB");
        gateway.stop();
        Ok(())
    }
}

/// The yardstick's payload: a small e-mail (73 bytes of JSON).
pub fn email_payload() -> Value {
    serde_json::json!({"to": "user@example.com", "subject": "hello", "body": "a short message"})
}

/// Enqueues `n` no-op tasks with `args` on `q`, in batches of `batch`.
pub async fn enqueue_noops(broker: &Broker, q: &QueueName, n: usize, batch: usize, args: &Value) -> anyhow::Result<()> {
    let mut left = n;
    while left > 0 {
        let size = left.min(batch);
        let tasks: Vec<NewTask> = (0..size).map(|_| NewTask::new(q, "noop", args)).collect();
        broker.enqueue(q, &tasks, 0, None).await?;
        left -= size;
    }
    Ok(())
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}
