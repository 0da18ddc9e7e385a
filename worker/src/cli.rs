//! What a worker binary does: load the settings, apply the command line, connect and run until SIGTERM or SIGINT. Custom worker binaries call [`run_worker`]
//! with their own registry, the way `celery -A app worker` loads an app; `celeriac-beat`
//! calls [`run_beat`].

use anyhow::Context;
use celeriac::settings::ProcessSettings;
use celeriac::{Broker, QueueName};

use crate::order::{QueueOrder, split_weights};
use crate::{Beat, BeatConfig, BeatProcessSettings, Registry, Worker, WorkerConfig, WorkerProcessSettings};

/// Runs a worker with the registry `make_registry` builds from the settings. `queues` entries
/// may carry a weight (`critical=6`), which makes the order weighted.
pub async fn run_worker(
    queues: Vec<String>,
    concurrency: Option<usize>,
    make_registry: fn(&WorkerProcessSettings) -> anyhow::Result<Registry>,
) -> anyhow::Result<()> {
    run_worker_with(queues, concurrency, None, make_registry).await
}

/// [`run_worker`] with `--order` (`fair`, `strict` or `weighted`) as well.
pub async fn run_worker_with(
    queues: Vec<String>,
    concurrency: Option<usize>,
    order: Option<String>,
    make_registry: fn(&WorkerProcessSettings) -> anyhow::Result<Registry>,
) -> anyhow::Result<()> {
    let settings = WorkerProcessSettings::load()?;
    let telemetry = celeriac::telemetry::init(&settings.log, &settings.telemetry, "celeriac-worker");
    let mut config = WorkerConfig::from_settings(&settings);
    let (names, weights) = split_weights(&queues).map_err(anyhow::Error::msg).context("--queues")?;
    if !names.is_empty() {
        config.queues = names
            .iter()
            .map(|q| QueueName::parse(q).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()
            .context("--queues")?;
    }
    if let Some(n) = concurrency {
        anyhow::ensure!((1..=10_000).contains(&n), "--concurrency must be 1 to 10000");
        config.concurrency = n;
    }
    if order.is_some() || !weights.is_empty() || !names.is_empty() {
        let order = order.unwrap_or_else(|| {
            if weights.is_empty() {
                settings.worker.order.clone()
            } else {
                "weighted".into()
            }
        });
        let weights = if weights.is_empty() {
            settings.worker.weights.clone()
        } else {
            weights
        };
        config.order = QueueOrder::parse(&order, &config.queues, &weights)
            .map_err(|(setting, message)| anyhow::anyhow!("--order/--queues: {setting}: {message}"))?;
    }
    let registry = make_registry(&settings)?;
    let broker = Broker::open(&settings.redis, settings.result_ttl())
        .await?
        .with_archive(settings.archive.enabled)
        .with_payload(settings.tasks.payload());
    if let Err(e) = broker.publish_task_types(&settings.declared_task_types()).await {
        tracing::warn!(error = %e, "could not publish the settings' remote task types (Redis unreachable?)");
    }
    let shutdown = celeriac::shutdown::on_signal();
    Worker::new(broker, registry, config).run(shutdown).await;
    telemetry.shutdown();
    Ok(())
}

/// Runs a beat process until SIGTERM or SIGINT: loads the settings (an invalid schedule stops
/// it here, named), then fires the schedules.
pub async fn run_beat() -> anyhow::Result<()> {
    let settings = BeatProcessSettings::load()?;
    let telemetry = celeriac::telemetry::init(&settings.log, &settings.telemetry, "celeriac-beat");
    let broker = Broker::open(&settings.redis, settings.result_ttl())
        .await?
        .with_archive(settings.archive.enabled)
        .with_payload(settings.tasks.payload());
    let shutdown = celeriac::shutdown::on_signal();
    Beat::new(broker, BeatConfig::from_settings(&settings)).run(shutdown).await;
    telemetry.shutdown();
    Ok(())
}
