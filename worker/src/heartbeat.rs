//! Keeps the worker's leases alive. It runs on its own OS thread with its own small runtime
//! and Redis connection, so a task that hogs the CPU (or blocks a runtime thread) cannot
//! starve it: a busy worker never loses its lease (BullMQ's stalled-job lesson). Each beat
//! also publishes the worker's task metrics, and a last beat at the stop publishes the final
//! ones, for the gateway's `GET /metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use celeriac::Broker;
use celeriac::broker::WorkerInfo;
use tokio_util::sync::CancellationToken;

use crate::liveness::hostname;
use crate::shared::Shared;

/// How long a worker's published metrics outlive its last heartbeat: long enough for the
/// gateway to read the final ones of a worker that stopped.
const METRICS_TTL_MIN: Duration = Duration::from_secs(300);

pub(crate) struct Heartbeat {
    stop: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

impl Heartbeat {
    /// Starts beating at once and then every third of the lease.
    pub fn start(shared: Arc<Shared>) -> Self {
        let stop = CancellationToken::new();
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("celeriac-heartbeat".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("heartbeat runtime");
                rt.block_on(beat_until_stopped(shared, thread_stop));
            })
            .expect("spawn heartbeat thread");
        Self { stop, thread }
    }

    /// Stops beating and removes the worker from the registry.
    pub async fn stop(self) {
        self.stop.cancel();
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

async fn beat_until_stopped(shared: Arc<Shared>, stop: CancellationToken) {
    let config = &shared.config;
    let broker = match shared.broker.reopen() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "heartbeat cannot reach Redis");
            return;
        }
    };
    let started_at = chrono::Utc::now();
    let process_start = crate::liveness::process_start(std::process::id());
    let interval = config.lease / 3;
    loop {
        let info = WorkerInfo {
            id: config.id.clone(),
            host: hostname(),
            pid: std::process::id(),
            host_id: config.host_id.clone(),
            process_start,
            queues: config.queues.iter().map(|q| q.to_string()).collect(),
            concurrency: config.concurrency,
            running: shared.running.lock().map(|r| r.len()).unwrap_or(0),
            processed: shared.processed.load(Ordering::Relaxed),
            failed: shared.failed.load(Ordering::Relaxed),
            started_at,
            last_heartbeat: chrono::Utc::now(),
        };
        let beat = async {
            broker.renew_leases(&shared.queues(), &config.id, config.lease).await?;
            broker.register_worker(&info, config.lease).await?;
            publish_metrics(&shared, &broker).await
        };
        if let Err(e) = beat.await {
            tracing::warn!(error = %e, "heartbeat failed; will retry");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => break,
        }
    }
    if let Err(e) = publish_metrics(&shared, &broker).await {
        tracing::warn!(error = %e, "could not publish the final task metrics");
    }
    if let Err(e) = broker.unregister_worker(&config.id).await {
        tracing::warn!(error = %e, "could not unregister the worker; its registration will expire");
    }
}

async fn publish_metrics(shared: &Shared, broker: &Broker) -> Result<(), celeriac::BrokerError> {
    let snapshot = shared.metrics.lock().expect("metrics lock").clone();
    let ttl = (shared.config.lease * 2).max(METRICS_TTL_MIN);
    broker.publish_worker_metrics(&shared.config.id, &snapshot, ttl).await
}
