//! The latency measures: enqueue to STARTED and to SUCCESS of one task at a time, on an idle
//! worker and while other producers enqueue `Sizes::load_per_second` tasks; first on
//! Celeriac's worker, then the same on the latency yardstick (`celeriac-latency-yardstick`,
//! the cheapest Redis worker we could write), so the run tells how far this machine lets any
//! worker go under that load. Both are timed by the same probe, in this process, from the
//! same event channel, under the same load (batches of 100, as Celeriac's enqueue and the
//! yardstick's script each take them).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use celeriac::broker::{NewTask, TaskEvents};
use celeriac::{Broker, QueueName, TaskId, TaskState};
use redis::aio::MultiplexedConnection;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::measures::{Bench, enqueue_noops, percentile, queue};
use crate::procs::{self, Proc};

/// Where the probes and the load go, and how a probe's end is checked.
trait Target: Clone + Send + Sync + 'static {
    /// Enqueues one probe task; returns its id as the event channel names it, and the instant
    /// just before the call that enqueued it (the task already built, as a caller has it: the
    /// probe's clock starts there).
    fn enqueue_one(&self) -> impl Future<Output = anyhow::Result<(String, Instant)>> + Send;
    /// Enqueues `n` other tasks in one call.
    fn enqueue_many(&self, n: usize) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Fails unless the task ended with its result stored.
    fn check_done(&self, id: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A Celeriac queue, through the library.
#[derive(Clone)]
struct Celeriac {
    broker: Broker,
    queue: QueueName,
}

impl Target for Celeriac {
    async fn enqueue_one(&self) -> anyhow::Result<(String, Instant)> {
        let task = NewTask::new(&self.queue, "noop", &Value::Null);
        let id = task.id.to_string();
        let sent = Instant::now();
        self.broker.enqueue(&self.queue, std::slice::from_ref(&task), 0, None).await?;
        Ok((id, sent))
    }

    async fn enqueue_many(&self, n: usize) -> anyhow::Result<()> {
        enqueue_noops(&self.broker, &self.queue, n, n, &Value::Null).await
    }

    async fn check_done(&self, id: &str) -> anyhow::Result<()> {
        let id = TaskId::parse(id).ok_or_else(|| anyhow::anyhow!("not a task id: {id}"))?;
        let state = self.broker.get(&id).await?.map(|r| r.state);
        anyhow::ensure!(state == Some(TaskState::Success), "task {id} ended {state:?}");
        Ok(())
    }
}

/// The latency yardstick's list, fed with its own enqueue: each task's hash (state and
/// payload), then the ids on the list, one script a call.
#[derive(Clone)]
struct Yardstick {
    conn: MultiplexedConnection,
    enqueue: Arc<redis::Script>,
    pending: String,
    tasks: String,
}

const YARDSTICK_ENQUEUE: &str = r"
for i = 2, #ARGV do redis.call('HSET', ARGV[1] .. ARGV[i], 's', 'P', 'p', 'null') end
redis.call('LPUSH', KEYS[1], unpack(ARGV, 2))
return #ARGV - 1
";

impl Yardstick {
    async fn enqueue(&self, ids: &[String]) -> anyhow::Result<()> {
        let _: i64 = self
            .enqueue
            .key(&self.pending)
            .arg(&self.tasks)
            .arg(ids)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}

impl Target for Yardstick {
    async fn enqueue_one(&self) -> anyhow::Result<(String, Instant)> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let sent = Instant::now();
        self.enqueue(std::slice::from_ref(&id)).await?;
        Ok((id, sent))
    }

    async fn enqueue_many(&self, n: usize) -> anyhow::Result<()> {
        let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().simple().to_string()).collect();
        self.enqueue(&ids).await
    }

    async fn check_done(&self, id: &str) -> anyhow::Result<()> {
        let state: Option<String> = redis::cmd("HGET")
            .arg(format!("{}{id}", self.tasks))
            .arg("s")
            .query_async(&mut self.conn.clone())
            .await?;
        anyhow::ensure!(state.as_deref() == Some("OK"), "yardstick task {id} ended {state:?}");
        Ok(())
    }
}

impl Bench {
    /// Idle worker: CPU over a quiet period, then the probes on Celeriac's worker.
    pub(crate) async fn latency(&mut self, worker: &Proc) -> anyhow::Result<()> {
        let before = worker.cpu();
        tokio::time::sleep(self.sizes.idle).await;
        let idle = (worker.cpu() - before).as_secs_f64() / self.sizes.idle.as_secs_f64() * 100.0;
        self.report.add(
            &format!("idle worker CPU over {} s", self.sizes.idle.as_secs()),
            idle,
            "% of a core",
        );
        self.report.add("worker RSS at rest", worker.rss().0 as f64 / 1e6, "MB");
        let target = Celeriac {
            broker: self.broker.clone(),
            queue: queue("bench"),
        };
        self.probes(target, "").await
    }

    /// The same probes on the latency yardstick, started here on the bench's Redis (keys of
    /// its own under the bench's namespace, events on the bench's channel) and stopped after.
    pub(crate) async fn latency_floor(&mut self) -> anyhow::Result<()> {
        let prefix = format!("{}:{{latency-yardstick}}:", self.namespace);
        let channel = self.broker.keys().events_channel();
        let args = ["--redis-url", &self.redis_url, "--prefix", &prefix, "--channel", &channel];
        let worker = procs::spawn("celeriac-latency-yardstick", &args, &[])?;
        let conn = redis::Client::open(self.redis_url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        let target = Yardstick {
            conn,
            enqueue: Arc::new(redis::Script::new(YARDSTICK_ENQUEUE)),
            pending: format!("{prefix}pending"),
            tasks: format!("{prefix}t:"),
        };
        let measured = self.probes(target, "latency yardstick: ").await;
        worker.stop();
        measured
    }

    /// Probes one task at a time on an idle worker, then under other producers' load, and
    /// reports each, its names prefixed with `label`.
    async fn probes<T: Target>(&mut self, target: T, label: &str) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let events = TaskEvents::spawn(&self.broker, stop.clone());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let idle = self.probe(&events, &target).await?;
        self.report_latency(label, "idle worker", idle);

        let rate = self.sizes.load_per_second;
        let load_stop = CancellationToken::new();
        let load_started = Instant::now();
        let load = tokio::spawn(background_load(target.clone(), rate, load_stop.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let loaded = self.probe(&events, &target).await;
        load_stop.cancel();
        let sent = load.await??;
        let achieved = sent as f64 / load_started.elapsed().as_secs_f64();
        self.report_latency(label, &format!("worker under load ({rate} other tasks/s)"), loaded?);
        self.report
            .add(&format!("{label}other tasks enqueued per second during that"), achieved, "tasks/s");
        stop.cancel();
        Ok(())
    }

    /// Enqueues probe tasks one at a time and times each to its STARTED and SUCCESS events.
    async fn probe<T: Target>(&self, events: &TaskEvents, target: &T) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
        let (mut to_started, mut to_success) = (Vec::new(), Vec::new());
        for _ in 0..self.sizes.latency {
            let mut rx = events.subscribe();
            let (id, t0) = target.enqueue_one().await?;
            let wanted: Arc<str> = Arc::from(id.as_str());
            let mut seen = 0;
            while seen < 2 {
                let msg = loop {
                    match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await? {
                        Ok(msg) => break msg,
                        // Under load the event fan-out can outrun this receiver; skip ahead.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(e) => return Err(e.into()),
                    }
                };
                if msg == wanted {
                    seen += 1;
                    if seen == 1 {
                        to_started.push(t0.elapsed());
                    } else {
                        to_success.push(t0.elapsed());
                    }
                }
            }
            target.check_done(&id).await?;
        }
        Ok((to_started, to_success))
    }

    fn report_latency(&mut self, label: &str, when: &str, (to_started, to_success): (Vec<Duration>, Vec<Duration>)) {
        for (name, mut samples) in [("enqueue to STARTED", to_started), ("enqueue to SUCCESS", to_success)] {
            samples.sort();
            self.report
                .add(&format!("{label}{name}, {when}, p50"), percentile(&samples, 0.50), "ms");
            self.report
                .add(&format!("{label}{name}, {when}, p99"), percentile(&samples, 0.99), "ms");
        }
    }
}

/// Other producers: tasks on `target` at `per_second`, in batches of 100, until `stop`.
/// Returns how many it enqueued.
async fn background_load<T: Target>(target: T, per_second: u32, stop: CancellationToken) -> anyhow::Result<u64> {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(100.0 / f64::from(per_second.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return Ok(sent),
        }
        target.enqueue_many(100).await?;
        sent += 100;
    }
}
