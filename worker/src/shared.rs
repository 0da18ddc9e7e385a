//! The state shared by the parts of one worker process (fetchers, acker, heartbeat, reaper,
//! promoter, control listener): built once by the runtime (`runtime.rs`) and handed to each
//! part, which imports it from here, not from the runtime that wires them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};

use celeriac::metrics::MetricsSnapshot;
use celeriac::{Broker, QueueName, TaskId};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::registry::Registry;

/// A run in progress, reachable for revoke.
pub(crate) struct RunHandle {
    pub cancel: CancellationToken,
    pub terminate: CancellationToken,
    /// Set when a revoke reached the run: its outcome is then stored as REVOKED.
    pub revoked: Arc<AtomicBool>,
}

/// State shared by the parts of one worker process.
pub(crate) struct Shared {
    pub broker: Broker,
    pub registry: Registry,
    pub config: WorkerConfig,
    /// The queues and shards consumed now: every shard of `config.queues` (`shards.rs`).
    pub queues: RwLock<Vec<QueueName>>,
    /// One permit per concurrency slot; a run holds one until its outcome is handed over.
    pub slots: Arc<Semaphore>,
    pub running: Mutex<HashMap<TaskId, RunHandle>>,
    /// Fires when the grace period is over: runs still going are stopped and given back.
    pub abort: CancellationToken,
    /// Fires a grace period after the stop began: outcomes that still cannot be stored (Redis
    /// is down) are then left to lease expiry, so a stop never hangs on an outage.
    pub give_up: CancellationToken,
    pub processed: AtomicU64,
    pub failed: AtomicU64,
    /// Task metrics of this process, published at every heartbeat (`celeriac::metrics`).
    pub metrics: Mutex<MetricsSnapshot>,
    /// Whether the last call of a fetch loop to Redis succeeded: the worker's readiness.
    pub consuming: Arc<AtomicBool>,
}

impl Shared {
    /// The queues and shards consumed now (for the leases, the reaper, the promoter).
    pub fn queues(&self) -> Vec<QueueName> {
        self.queues.read().expect("queues lock").clone()
    }

    /// The state of a worker that has not started: every slot free, nothing running.
    pub fn new(broker: Broker, registry: Registry, config: WorkerConfig) -> Self {
        Self {
            broker,
            registry,
            slots: Arc::new(Semaphore::new(config.concurrency)),
            config,
            queues: RwLock::default(),
            running: Mutex::default(),
            abort: CancellationToken::new(),
            give_up: CancellationToken::new(),
            processed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            metrics: Mutex::default(),
            consuming: Arc::new(AtomicBool::new(false)),
        }
    }
}
