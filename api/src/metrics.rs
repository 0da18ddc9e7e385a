//! `GET /metrics`: Prometheus text, built at each scrape from what Redis already holds, so a
//! scrape costs O(queues + workers), never O(tasks):
//!
//! - per queue (label `queue`), from its `stats` hash and its lists: `celeriac_queue_*_total`
//!   counters (enqueued, succeeded, failed, retried, revoked; exact, kept in Redis by the
//!   scripts, so they count every process and survive restarts) and the `pending`,
//!   `scheduled` and `dead` depth gauges; for a queue with limits, the
//!   `celeriac_queue_rate_tokens`, `celeriac_queue_concurrency_in_use` and
//!   `celeriac_queue_concurrency_cap` gauges and `celeriac_queue_held` (pending tasks a limit
//!   holds back now, label `reason`);
//! - per queue and task name (labels `queue`, `task`), from the workers: `celeriac_tasks_*_total`
//!   (started, succeeded, failed, retried, revoked) and the `celeriac_task_run_seconds` and
//!   `celeriac_task_wait_seconds` histograms. Each worker measures its own runs in memory and
//!   publishes them at every heartbeat (`celeriac::metrics`); the gateway sums the snapshots.
//!   When a worker goes away, its last snapshot is kept here, so the sums never go down while
//!   this gateway runs (a gateway restart is a counter reset, as Prometheus expects).
//! - `celeriac_workers_online`, from the worker registry.

use std::collections::HashMap;
use std::fmt;

use celeriac::broker::{LimitsView, QueueStats};
use celeriac::metrics::{BUCKETS, Histogram, MetricsSnapshot, TaskSeries};
use celeriac::{Broker, BrokerError};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::Mutex;

/// The `Content-Type` of the answer: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The workers' task metrics as this gateway last saw them.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    /// Held for a whole scrape, so two scrapes never apply their reads out of order.
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// Each worker's last snapshot.
    last: HashMap<String, MetricsSnapshot>,
    /// The summed last snapshots of workers that went away.
    retired: MetricsSnapshot,
}

impl WorkerMetrics {
    /// Reads every queue's counters and depths and the workers' snapshots, and renders them.
    pub async fn render(&self, broker: &Broker) -> Result<String, BrokerError> {
        let queues = broker.queue_stats().await?;
        let workers = broker.live_workers().await?;
        let mut seen = self.seen.lock().await;
        // Live workers, and those seen before: a stopped worker's final snapshot outlives it.
        let mut ids: Vec<String> = workers.iter().map(|w| w.id.clone()).collect();
        ids.extend(seen.last.keys().filter(|id| !workers.iter().any(|w| &w.id == *id)).cloned());
        let snapshots = broker.worker_metrics(&ids).await?;
        for (id, snapshot) in ids.into_iter().zip(snapshots) {
            match snapshot {
                Some(snapshot) => {
                    seen.last.insert(id, snapshot);
                }
                None => {
                    if let Some(gone) = seen.last.remove(&id) {
                        seen.retired.merge(&gone);
                    }
                }
            }
        }
        let mut tasks = seen.retired.clone();
        for snapshot in seen.last.values() {
            tasks.merge(snapshot);
        }
        drop(seen);
        let scrape = Scrape {
            queues,
            workers_online: workers.len(),
            tasks,
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(scrape));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
            .map_err(|e| BrokerError::Protocol(format!("cannot encode the metrics: {e}")))?;
        Ok(text)
    }
}

/// Everything one scrape read.
#[derive(Debug)]
struct Scrape {
    queues: Vec<QueueStats>,
    workers_online: usize,
    tasks: MetricsSnapshot,
}

type QueueLabels<'a> = [(&'static str, &'a str); 1];
type TaskLabels<'a> = [(&'static str, &'a str); 2];

impl Scrape {
    fn queue_counter(&self, encoder: &mut DescriptorEncoder, name: &str, help: &str, value: fn(&QueueStats) -> u64) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for q in &self.queues {
            let labels: QueueLabels = [("queue", &q.queue)];
            metric
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(&value(q), None)?;
        }
        Ok(())
    }

    fn queue_gauge(&self, encoder: &mut DescriptorEncoder, name: &str, help: &str, value: fn(&QueueStats) -> u64) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for q in &self.queues {
            let labels: QueueLabels = [("queue", &q.queue)];
            metric.encode_family(&labels)?.encode_gauge(&value(q))?;
        }
        Ok(())
    }

    /// A gauge of the queues whose limits have the value (the others have no such limit).
    fn limit_gauge(&self, encoder: &mut DescriptorEncoder, name: &str, help: &str, value: fn(&LimitsView) -> Option<u64>) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for q in &self.queues {
            if let Some(v) = q.limits.as_ref().and_then(value) {
                let labels: QueueLabels = [("queue", &q.queue)];
                metric.encode_family(&labels)?.encode_gauge(&v)?;
            }
        }
        Ok(())
    }

    /// Pending tasks a limit holds back now, by queue and reason (`rate`, `concurrency`,
    /// `key_concurrency`).
    fn held_gauge(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(
            "celeriac_queue_held",
            "Pending tasks a limit of the queue holds back now, by reason (rate, concurrency, or key_concurrency: parked for their key's slot).",
            None,
            MetricType::Gauge,
        )?;
        for q in &self.queues {
            let Some(limits) = &q.limits else { continue };
            let parked = limits.parked.unwrap_or(0);
            for reason in ["rate", "concurrency"] {
                let held = if limits.held.as_deref() == Some(reason) {
                    q.pending - parked
                } else {
                    0
                };
                let labels: TaskLabels = [("queue", &q.queue), ("reason", reason)];
                metric.encode_family(&labels)?.encode_gauge(&held)?;
            }
            if limits.parked.is_some() {
                let labels: TaskLabels = [("queue", &q.queue), ("reason", "key_concurrency")];
                metric.encode_family(&labels)?.encode_gauge(&parked)?;
            }
        }
        Ok(())
    }

    fn task_counter(&self, encoder: &mut DescriptorEncoder, name: &str, help: &str, value: fn(&TaskSeries) -> u64) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (queue, task, series) in self.tasks.iter() {
            let labels: TaskLabels = [("queue", queue), ("task", task)];
            metric
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(&value(series), None)?;
        }
        Ok(())
    }

    fn task_histogram(&self, encoder: &mut DescriptorEncoder, name: &str, help: &str, value: fn(&TaskSeries) -> &Histogram) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
        for (queue, task, series) in self.tasks.iter() {
            let histogram = value(series);
            if histogram.buckets.len() != BUCKETS.len() + 1 {
                continue;
            }
            let buckets: Vec<(f64, u64)> = BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(histogram.buckets.iter().copied())
                .collect();
            let labels: TaskLabels = [("queue", queue), ("task", task)];
            metric
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(histogram.sum, histogram.count, &buckets, None)?;
        }
        Ok(())
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let e = &mut encoder;
        self.queue_counter(e, "celeriac_queue_enqueued", "Tasks enqueued on the queue (any process).", |q| {
            q.enqueued
        })?;
        self.queue_counter(e, "celeriac_queue_succeeded", "Runs stored as SUCCESS.", |q| q.succeeded)?;
        self.queue_counter(
            e,
            "celeriac_queue_failed",
            "Tasks that ended FAILURE (dead-lettered), poison records included.",
            |q| q.failed,
        )?;
        self.queue_counter(
            e,
            "celeriac_queue_retried",
            "Runs that failed and were scheduled to run again.",
            |q| q.retried,
        )?;
        self.queue_counter(
            e,
            "celeriac_queue_revoked",
            "Tasks that ended REVOKED: revoked queued or running, purged, or expired before they started.",
            |q| q.revoked,
        )?;
        self.queue_gauge(e, "celeriac_queue_pending", "Tasks waiting in the queue's pending list.", |q| {
            q.pending
        })?;
        self.queue_gauge(
            e,
            "celeriac_queue_scheduled",
            "Tasks waiting for their time (countdown, eta, retry).",
            |q| q.scheduled,
        )?;
        self.queue_gauge(e, "celeriac_queue_dead", "Dead-lettered tasks kept for the queue.", |q| q.dead)?;
        self.limit_gauge(
            e,
            "celeriac_queue_rate_tokens",
            "Tokens left in the queue's rate limit (tasks that could go out at once).",
            |l| l.tokens,
        )?;
        self.limit_gauge(
            e,
            "celeriac_queue_concurrency_in_use",
            "Slots of the queue's concurrency cap in use (tasks leased to workers).",
            |l| l.running,
        )?;
        self.limit_gauge(e, "celeriac_queue_concurrency_cap", "The queue's concurrency cap.", |l| {
            l.declared.concurrency.map(u64::from)
        })?;
        self.held_gauge(e)?;
        let mut workers = e.encode_descriptor(
            "celeriac_workers_online",
            "Worker processes with a live registration.",
            None,
            MetricType::Gauge,
        )?;
        workers.encode_gauge(&(self.workers_online as u64))?;
        self.task_counter(e, "celeriac_tasks_started", "Runs started, as the workers counted them.", |s| {
            s.started
        })?;
        self.task_counter(
            e,
            "celeriac_tasks_succeeded",
            "Runs stored as SUCCESS, as the workers counted them.",
            |s| s.succeeded,
        )?;
        self.task_counter(
            e,
            "celeriac_tasks_failed",
            "Runs stored as FAILURE, as the workers counted them.",
            |s| s.failed,
        )?;
        self.task_counter(
            e,
            "celeriac_tasks_retried",
            "Runs that failed and will run again, as the workers counted them.",
            |s| s.retried,
        )?;
        self.task_counter(
            e,
            "celeriac_tasks_revoked",
            "Runs revoked while running, as the workers counted them.",
            |s| s.revoked,
        )?;
        self.task_histogram(e, "celeriac_task_run", "How long runs took, start to outcome.", |s| &s.run)?;
        self.task_histogram(
            e,
            "celeriac_task_wait",
            "How long tasks waited to start since they could run (eta, else creation).",
            |s| &s.wait,
        )?;
        Ok(())
    }
}
