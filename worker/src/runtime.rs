//! The worker process: wires the fetchers (one per queue, or one for all in strict or
//! weighted order), the executor, the acker, the
//! heartbeat, the reaper and the promoter together, and stops gracefully: stop fetching, let
//! running tasks finish within the grace period, give the rest back, store every outcome.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use celeriac::Broker;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::WorkerConfig;
use crate::heartbeat::Heartbeat;
use crate::order::QueueOrder;
use crate::registry::Registry;
use crate::shared::Shared;
use crate::{acker, control, fetcher, health, ordered, promoter, reaper, shards, webhooks};

/// After the last outcome is stored, anything still leased to this worker belongs to no run
/// (a claim interrupted by the stop, say): give it back so it runs elsewhere at once.
async fn give_back_leftovers(shared: &Shared) {
    let worker = &shared.config.id;
    for queue in &shared.queues() {
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
    /// Delivers the completion webhooks of the queues consumed (`None`: no `[webhooks] secret`).
    deliverer: Option<webhooks::Deliverer>,
}

impl Worker {
    pub fn new(broker: Broker, mut registry: Registry, config: WorkerConfig) -> Self {
        let ca_file = config.remote_ca_file.as_deref();
        // The settings' check read the CA file already; if it went bad since, https:// calls
        // trust the web roots only (and fail, logged, for a private CA's endpoint).
        let remote = crate::remote::RemoteTasks::new(config.gateway_url.clone(), ca_file).unwrap_or_else(|e| {
            tracing::error!(error = %e, "worker.remote_ca_file is unusable; https:// remote calls trust the web roots only");
            crate::remote::RemoteTasks::new(config.gateway_url.clone(), None).expect("the web roots load")
        });
        registry.enable_remote(remote);
        let deliverer = crate::remote::http_client(ca_file)
            .or_else(|_| crate::remote::http_client(None))
            .ok()
            .and_then(|client| webhooks::Deliverer::new(&config.webhooks, client));
        Self {
            shared: Arc::new(Shared::new(broker, registry, config)),
            deliverer,
        }
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
        tracing::info!(worker = %config.id, queues = ?config.queues.iter().map(|q| q.as_str()).collect::<Vec<_>>(), concurrency = config.concurrency, threads = tokio::runtime::Handle::current().metrics().num_workers(), "worker starting");
        let specs: Vec<_> = shared.registry.specs().cloned().collect();
        if let Err(e) = shared.broker.register_tasks(&specs).await {
            tracing::warn!(error = %e, "could not publish the task types (Redis unreachable?); the gateway knows only the built-in ones");
        }
        let first_shards = shards::added(&shared).await;
        if let Err(e) = shared.broker.apply_declared_limits(&config.limits).await {
            tracing::warn!(error = %e, "cannot set the settings' queue limits in Redis yet");
        }
        let heartbeat = Heartbeat::start(Arc::clone(&shared));
        let (settle_tx, settle_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(acker::run(Arc::clone(&shared), settle_rx));
        let mut fetchers = tokio::task::JoinSet::new();
        // Fair order: one fetch loop per shard; they share the slots, so the shards are served
        // fairly, and each blocks on its own shard when it is empty, so the worker waits on all
        // at once. Strict or weighted order: one loop takes the queues themselves (shard 0) in
        // that order, and the other shards of sharded queues get fair loops of their own (so
        // their tasks are never left behind; the order holds between the queues' first shards).
        let ordered = config.order != QueueOrder::Fair;
        if ordered {
            fetchers.spawn(ordered::run(Arc::clone(&shared), settle_tx.clone(), shutdown.clone()));
        }
        let mut start_fetchers = |queues: Vec<celeriac::QueueName>| {
            for queue in queues.into_iter().filter(|q| !ordered || q.is_shard()) {
                fetchers.spawn(fetcher::run(Arc::clone(&shared), queue, settle_tx.clone(), shutdown.clone()));
            }
        };
        start_fetchers(first_shards);
        let maintenance = CancellationToken::new();
        let promoter = tokio::spawn(promoter::run(Arc::clone(&shared), maintenance.clone()));
        let reaper = tokio::spawn(reaper::run(Arc::clone(&shared), maintenance.clone()));
        let control = tokio::spawn(control::run(Arc::clone(&shared), maintenance.clone()));
        let webhooks = self
            .deliverer
            .map(|deliverer| tokio::spawn(webhooks::run(Arc::clone(&shared), deliverer, maintenance.clone())));
        if let Some(address) = config.health_bind {
            match health::bind(address).await {
                Ok(listener) => {
                    tokio::spawn(health::serve(listener, Arc::clone(&shared.consuming), maintenance.clone()));
                }
                Err(e) => tracing::error!(%address, error = %e, "cannot serve the health probes"),
            }
        }

        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(shards::WATCH_PERIOD) => {
                    let new = shards::added(&shared).await;
                    if !new.is_empty() {
                        tracing::info!(shards = ?new.iter().map(|q| q.as_str()).collect::<Vec<_>>(), "consuming new shards");
                    }
                    start_fetchers(new);
                }
            }
        }
        drop(settle_tx);
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
        if let Some(webhooks) = webhooks {
            let _ = webhooks.await;
        }
        heartbeat.stop().await;
        tracing::info!(worker = %config.id, processed = shared.processed.load(Ordering::Relaxed), "worker stopped");
    }
}
