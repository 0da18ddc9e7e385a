//! What a worker binary does: load the settings, build its async runtime, apply the command
//! line, connect and run until SIGTERM or SIGINT. Custom worker binaries call [`worker_main`]
//! (or [`run_worker`] on a runtime of their own) with their own registry, the way
//! `celery -A app worker` loads an app; `celeriac-beat` calls [`run_beat`].

use anyhow::Context;
use celeriac::settings::ProcessSettings;
use celeriac::{Broker, QueueName};

use crate::order::{QueueOrder, split_weights};
use crate::settings::check_threads;
use crate::{Beat, BeatConfig, BeatProcessSettings, Registry, Worker, WorkerConfig, WorkerProcessSettings};

/// What a worker's command line may set; what it leaves unset comes from the settings.
#[derive(Debug, Clone, Default)]
pub struct WorkerOptions {
    /// Queues to consume (empty: `worker.queues`); `name=weight` entries (`critical=6`) make
    /// the order weighted.
    pub queues: Vec<String>,
    /// Tasks run at once (unset: `worker.concurrency`).
    pub concurrency: Option<usize>,
    /// How the queues share the slots: `fair`, `strict` or `weighted` (unset: `worker.order`).
    pub order: Option<String>,
    /// Threads of the async runtime (unset: `worker.threads`, else one per core).
    pub threads: Option<usize>,
}

/// A custom worker binary's whole `main`, as `celeriac-worker`'s: loads the settings, builds
/// the async runtime with the threads `options` or `worker.threads` ask for (one per core
/// when neither does), and runs the worker on it until SIGTERM or SIGINT.
pub fn worker_main(options: WorkerOptions, make_registry: fn(&WorkerProcessSettings) -> anyhow::Result<Registry>) -> anyhow::Result<()> {
    let settings = WorkerProcessSettings::load()?;
    if let Some(threads) = options.threads {
        check_threads(threads).map_err(|message| anyhow::anyhow!("--threads {message}"))?;
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = options.threads.or(settings.worker.threads) {
        runtime.worker_threads(threads);
    }
    let runtime = runtime.build().context("the worker's async runtime")?;
    runtime.block_on(run_loaded(settings, options, make_registry))
}

/// Runs a worker with the registry `make_registry` builds from the settings, on the async
/// runtime the caller built (see [`worker_main`], which builds it from `worker.threads`).
/// `queues` entries may carry a weight (`critical=6`), which makes the order weighted.
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
    runtime_follows(&settings)?;
    let options = WorkerOptions {
        queues,
        concurrency,
        order,
        threads: None,
    };
    run_loaded(settings, options, make_registry).await
}

/// A runtime the binary built itself cannot follow `worker.threads`; rather than let the
/// setting go unread, the start stops when the current runtime's threads differ from it,
/// saying how to have it.
fn runtime_follows(settings: &WorkerProcessSettings) -> anyhow::Result<()> {
    let Some(wanted) = settings.worker.threads else {
        return Ok(());
    };
    let has = tokio::runtime::Handle::current().metrics().num_workers();
    anyhow::ensure!(
        wanted == has,
        "worker.threads: {wanted} set, but this binary's own runtime has {has} threads: \
         start the worker with celeriac_worker::cli::worker_main, which builds its runtime from \
         the setting, or unset it"
    );
    Ok(())
}

/// The worker's run once its settings are loaded: the command line applied, Redis opened.
async fn run_loaded(
    settings: WorkerProcessSettings,
    options: WorkerOptions,
    make_registry: fn(&WorkerProcessSettings) -> anyhow::Result<Registry>,
) -> anyhow::Result<()> {
    let WorkerOptions {
        queues,
        concurrency,
        order,
        ..
    } = options;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings with `worker.threads` set to `threads`.
    fn with_threads(threads: Option<usize>) -> WorkerProcessSettings {
        let mut settings = WorkerProcessSettings::default();
        settings.worker.threads = threads;
        settings
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_runtime_of_other_threads_than_the_setting_stops_the_start_naming_it() {
        assert!(runtime_follows(&with_threads(None)).is_ok(), "unset: any runtime");
        assert!(runtime_follows(&with_threads(Some(2))).is_ok());
        let e = runtime_follows(&with_threads(Some(1))).unwrap_err().to_string();
        assert!(
            e.starts_with("worker.threads: 1 set, but this binary's own runtime has 2 threads"),
            "{e}"
        );
        assert!(e.contains("cli::worker_main"), "{e}");
    }
}
