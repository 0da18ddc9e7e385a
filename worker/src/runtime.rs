//! The worker process: wires the fetchers (one per queue), the executor, the acker, the
//! heartbeat, the reaper and the promoter together, and stops gracefully: stop fetching, let
//! running tasks finish within the grace period, give the rest back, store every outcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use celeriac::metrics::MetricsSnapshot;
use celeriac::{Broker, QueueName, TaskId};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::heartbeat::Heartbeat;
use crate::registry::Registry;
use crate::{acker, control, fetcher, health, promoter, reaper};

/// How a worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique among live workers; names its in-flight hashes and leases.
    pub id: String,
    pub queues: Vec<QueueName>,
    pub concurrency: usize,
    /// Most tasks claimed per call (never more than free slots).
    pub batch_size: usize,
    pub lease: Duration,
    pub grace: Duration,
    pub namespace: String,
    /// Where to serve `/healthz` and `/readyz`, if anywhere.
    pub health_bind: Option<std::net::SocketAddr>,
}

impl WorkerConfig {
    /// A config from the settings, with an id made of host, pid and a random part.
    pub fn from_settings(settings: &celeriac::Settings) -> Self {
        let w = &settings.worker;
        Self {
            id: new_worker_id(),
            queues: w.queues.clone(),
            concurrency: w.concurrency,
            batch_size: w.batch_size,
            lease: Duration::from_secs(w.lease_secs),
            grace: Duration::from_secs(w.grace_secs),
            namespace: settings.redis.namespace.clone(),
            health_bind: w.health_bind,
        }
    }
}

/// `host.pid.random`: readable in `GET /workers`, unique across restarts.
pub fn new_worker_id() -> String {
    let host = hostname()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>();
    format!("{host}.{}.{:06x}", std::process::id(), fastrand::u32(..0x100_0000))
}

pub(crate) fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

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

/// After the last outcome is stored, anything still leased to this worker belongs to no run
/// (a claim interrupted by the stop, say): give it back so it runs elsewhere at once.
async fn give_back_leftovers(shared: &Shared) {
    let worker = &shared.config.id;
    for queue in &shared.config.queues {
        let leftovers = match shared.broker.leased(queue, worker).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "cannot check for leftover leases; the reaper will recover them");
                continue;
            }
        };
        if !leftovers.is_empty() {
            match shared.broker.requeue_own(queue, worker, &leftovers).await {
                Ok(n) => tracing::info!(queue = %queue, count = n, "gave leftover leased tasks back"),
                Err(e) => tracing::warn!(queue = %queue, error = %e, "cannot give leftovers back; the reaper will recover them"),
            }
        }
    }
}

/// A worker process's runtime.
pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    pub fn new(broker: Broker, registry: Registry, config: WorkerConfig) -> Self {
        let shared = Shared {
            broker,
            registry,
            slots: Arc::new(Semaphore::new(config.concurrency)),
            config,
            running: Mutex::default(),
            abort: CancellationToken::new(),
            give_up: CancellationToken::new(),
            processed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            metrics: Mutex::default(),
            consuming: Arc::new(AtomicBool::new(false)),
        };
        Self { shared: Arc::new(shared) }
    }

    pub fn id(&self) -> &str {
        &self.shared.config.id
    }

    /// Runs until `shutdown` fires, then stops gracefully. Returns once every outcome is stored
    /// (or, while Redis is unreachable, once the process must give up: the leases then expire
    /// and other workers run the tasks again).
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = self.shared;
        let config = &shared.config;
        tracing::info!(worker = %config.id, queues = ?config.queues.iter().map(|q| q.as_str()).collect::<Vec<_>>(), concurrency = config.concurrency, "worker starting");
        let specs: Vec<_> = shared.registry.specs().cloned().collect();
        if let Err(e) = shared.broker.register_tasks(&specs).await {
            tracing::warn!(error = %e, "could not publish the task types (Redis unreachable?); the gateway knows only the built-in ones");
        }
        let heartbeat = Heartbeat::start(Arc::clone(&shared));
        let (settle_tx, settle_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acker::run(Arc::clone(&shared), settle_rx));
        let mut fetchers = tokio::task::JoinSet::new();
        for queue in &config.queues {
            fetchers.spawn(fetcher::run(
                Arc::clone(&shared),
                queue.clone(),
                settle_tx.clone(),
                shutdown.clone(),
            ));
        }
        drop(settle_tx);
        let maintenance = CancellationToken::new();
        let promoter = tokio::spawn(promoter::run(Arc::clone(&shared), maintenance.clone()));
        let reaper = tokio::spawn(reaper::run(Arc::clone(&shared), maintenance.clone()));
        let control = tokio::spawn(control::run(Arc::clone(&shared), maintenance.clone()));
        if let Some(address) = config.health_bind {
            match health::bind(address).await {
                Ok(listener) => {
                    tokio::spawn(health::serve(listener, Arc::clone(&shared.consuming), maintenance.clone()));
                }
                Err(e) => tracing::error!(%address, error = %e, "cannot serve the health probes"),
            }
        }

        shutdown.cancelled().await;
        tracing::info!(worker = %config.id, grace = ?config.grace, "stopping: no new tasks; waiting for running ones");
        let give_up = shared.give_up.clone();
        let storing_deadline = config.grace * 2;
        tokio::spawn(async move {
            tokio::time::sleep(storing_deadline).await;
            give_up.cancel();
        });
        while fetchers.join_next().await.is_some() {}
        let all = config.concurrency as u32;
        if tokio::time::timeout(config.grace, shared.slots.acquire_many(all)).await.is_err() {
            tracing::warn!("grace period over: stopping the remaining runs and putting them back");
            shared.abort.cancel();
            let _ = shared.slots.acquire_many(all).await;
        }
        let _ = acker.await;
        give_back_leftovers(&shared).await;
        maintenance.cancel();
        let _ = tokio::join!(promoter, reaper, control);
        heartbeat.stop().await;
        tracing::info!(worker = %config.id, processed = shared.processed.load(Ordering::Relaxed), "worker stopped");
    }
}
