//! How a worker process runs ([`WorkerConfig`], read from the settings) and how it names
//! itself. Apart from the runtime so that every component reads it without importing the
//! runtime that wires them.

use std::time::Duration;

use celeriac::QueueName;
use celeriac::settings::RedisSettings;

use crate::settings::WorkerProcessSettings;

/// How a worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique among live workers; names its in-flight hashes and leases.
    pub id: String,
    /// The process table this worker sees (`liveness.rs`); `None` where it cannot be read.
    pub host_id: Option<String>,
    /// The queues to consume; each sharded one's every shard is consumed (`shards.rs`).
    pub queues: Vec<QueueName>,
    /// Queue -> number of shards, from the settings (`[tasks.shards]`).
    pub shards: std::collections::BTreeMap<QueueName, u32>,
    /// Queue -> rate limit and concurrency cap, from the settings (`[tasks.limits]`), set in
    /// Redis at start.
    pub limits: std::collections::BTreeMap<QueueName, celeriac::broker::QueueLimits>,
    pub concurrency: usize,
    /// How the queues share the slots (checked with the settings).
    pub order: crate::order::QueueOrder,
    /// Most tasks claimed per call (never more than free slots).
    pub batch_size: usize,
    pub lease: Duration,
    pub grace: Duration,
    /// Where Redis is, for the heartbeat's own connection (its `Debug` hides the password).
    pub redis: RedisSettings,
    /// Where to serve `/healthz` and `/readyz`, if anywhere.
    pub health_bind: Option<std::net::SocketAddr>,
    /// The gateway's URL as remote task endpoints reach it, for their `progress_url`.
    pub gateway_url: Option<String>,
    /// A CA (PEM) trusted for `https://` remote task endpoints besides the web roots.
    pub remote_ca_file: Option<std::path::PathBuf>,
    /// How completion webhooks are delivered (`[webhooks]`); without a secret, not at all.
    pub webhooks: celeriac::settings::WebhookSettings,
}

impl WorkerConfig {
    /// A config from the settings, with an id made of host, pid and a random part.
    pub fn from_settings(settings: &WorkerProcessSettings) -> Self {
        let w = &settings.worker;
        Self {
            id: new_worker_id(),
            host_id: crate::liveness::host_id(),
            queues: w.queues.clone(),
            shards: settings.tasks.shards.clone(),
            limits: settings.tasks.limits.clone(),
            concurrency: w.concurrency,
            order: crate::order::QueueOrder::parse(&w.order, &w.queues, &w.weights).unwrap_or(crate::order::QueueOrder::Fair),
            batch_size: w.batch_size,
            lease: w.lease,
            grace: w.grace,
            redis: settings.redis.clone(),
            health_bind: w.health_bind,
            gateway_url: w.gateway_url.clone(),
            remote_ca_file: w.remote_ca_file.clone(),
            webhooks: settings.webhooks.clone(),
        }
    }
}

/// `host.pid.random`: readable in `GET /workers`, unique across restarts.
pub fn new_worker_id() -> String {
    let host = crate::liveness::hostname()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>();
    format!("{host}.{}.{:06x}", std::process::id(), fastrand::u32(..0x100_0000))
}
