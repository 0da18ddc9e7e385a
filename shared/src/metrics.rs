//! Task metrics measured by workers, per queue and task name: runs started, their stored
//! outcomes, and histograms of run time and queue wait time. A worker keeps one
//! [`MetricsSnapshot`] in memory, publishes it to Redis at every heartbeat (one small key per
//! worker, with a TTL), and the gateway merges the workers' snapshots when it is scraped, so a
//! scrape costs O(workers × queues × task names), never O(tasks).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Upper bounds (seconds) of the histogram buckets, shared by every worker and the gateway;
/// a last, implicit bucket holds everything above (`+Inf`).
pub const BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// A histogram with the [`BUCKETS`] bounds: per-bucket (not cumulative) counts, the last one
/// for values above every bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub buckets: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; BUCKETS.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }
}

impl Histogram {
    pub fn observe(&mut self, value: Duration) {
        let secs = value.as_secs_f64();
        let slot = BUCKETS.iter().position(|bound| secs <= *bound).unwrap_or(BUCKETS.len());
        self.buckets[slot] += 1;
        self.sum += secs;
        self.count += 1;
    }

    /// Adds `other` in; a histogram with other buckets (another version) is left out.
    pub fn merge(&mut self, other: &Histogram) -> bool {
        if other.buckets.len() != self.buckets.len() {
            return false;
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.count += other.count;
        true
    }
}

/// How a stored run ended, as far as its worker knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Failed,
    Retried,
    Revoked,
}

/// The counters and histograms of one task name on one queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskSeries {
    pub started: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub retried: u64,
    pub revoked: u64,
    /// From start to outcome, every stored run.
    pub run: Histogram,
    /// From the time a run could have started (its eta, or its creation) to its start.
    pub wait: Histogram,
}

impl TaskSeries {
    fn merge(&mut self, other: &TaskSeries) {
        self.started += other.started;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.retried += other.retried;
        self.revoked += other.revoked;
        self.run.merge(&other.run);
        self.wait.merge(&other.wait);
    }
}

/// Every series of one worker (or, merged, of many): queue -> task name -> series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub series: BTreeMap<String, BTreeMap<String, TaskSeries>>,
}

impl MetricsSnapshot {
    fn entry(&mut self, queue: &str, task: &str) -> &mut TaskSeries {
        self.series.entry(queue.to_owned()).or_default().entry(task.to_owned()).or_default()
    }

    /// A run started after waiting `wait` (unknown for records without a creation time).
    pub fn record_start(&mut self, queue: &str, task: &str, wait: Option<Duration>) {
        let series = self.entry(queue, task);
        series.started += 1;
        if let Some(wait) = wait {
            series.wait.observe(wait);
        }
    }

    /// A run's outcome was stored after it ran for `run`.
    pub fn record_outcome(&mut self, queue: &str, task: &str, outcome: RunOutcome, run: Duration) {
        let series = self.entry(queue, task);
        match outcome {
            RunOutcome::Succeeded => series.succeeded += 1,
            RunOutcome::Failed => series.failed += 1,
            RunOutcome::Retried => series.retried += 1,
            RunOutcome::Revoked => series.revoked += 1,
        }
        series.run.observe(run);
    }

    /// Adds every series of `other` in.
    pub fn merge(&mut self, other: &MetricsSnapshot) {
        for (queue, tasks) in &other.series {
            for (task, series) in tasks {
                self.entry(queue, task).merge(series);
            }
        }
    }

    /// `(queue, task, series)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &TaskSeries)> {
        self.series
            .iter()
            .flat_map(|(q, tasks)| tasks.iter().map(move |(t, s)| (q.as_str(), t.as_str(), s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let mut h = Histogram::default();
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(6));
        h.observe(Duration::from_secs(7200));
        assert_eq!((h.buckets[0], h.buckets[1], h.buckets[BUCKETS.len()]), (1, 1, 1));
        assert_eq!(h.count, 3);
        assert!((h.sum - 7200.011).abs() < 1e-9);
    }

    #[test]
    fn snapshots_merge_series_by_queue_and_task() {
        let mut a = MetricsSnapshot::default();
        a.record_start("q", "add", Some(Duration::from_millis(1)));
        a.record_outcome("q", "add", RunOutcome::Succeeded, Duration::from_millis(2));
        let mut b = MetricsSnapshot::default();
        b.record_start("q", "add", None);
        b.record_outcome("q", "add", RunOutcome::Retried, Duration::from_millis(2));
        b.record_outcome("r", "mail", RunOutcome::Failed, Duration::from_secs(1));
        let json = serde_json::to_string(&b).unwrap();
        a.merge(&serde_json::from_str(&json).unwrap());
        let add = &a.series["q"]["add"];
        assert_eq!((add.started, add.succeeded, add.retried), (2, 1, 1));
        assert_eq!((add.run.count, add.wait.count), (2, 1));
        assert_eq!(a.series["r"]["mail"].failed, 1);
        assert_eq!(a.iter().count(), 2);
    }
}
