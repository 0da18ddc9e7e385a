//! `celeriac-archiver`: moves tasks that ended from Redis into the PostgreSQL archive.
//! `celeriac-archiver migrate` applies the migrations and exits; `celeriac-archiver` applies
//! them, then archives until Ctrl-C or SIGTERM. Redis comes from the project's settings
//! (config/, `CELERIAC_*`), the archive from `CELERIAC_ARCHIVE_*` (settings.rs of this crate)
//! or `[archive] database_url`; it also applies `[archive.retention]` and relays the outbox
//! (`celeriac_enqueue()`, relay.rs) to Redis.

use std::time::Duration;

use anyhow::Context;
use celeriac::Broker;
use celeriac_archive::{ArchiveSettings, Archiver, Relay, retention, schema};
use sqlx::postgres::PgPoolOptions;

/// jemalloc, as the gateway: decoding a batch allocates a few dozen small strings an ending.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("celeriac-archiver: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let layers = celeriac::settings::Layers::load()?;
    let settings = celeriac::Settings::from_layers(&layers)?;
    let telemetry = celeriac::telemetry::init(&settings.log, &settings.telemetry, "celeriac-archiver");
    let mut archive = ArchiveSettings::from_env().map_err(anyhow::Error::msg)?;
    if archive.database_url.is_none() {
        archive.database_url = settings.archive.database_url.clone();
    }
    let url = archive
        .database_url
        .clone()
        .context("neither CELERIAC_ARCHIVE_DATABASE_URL nor [archive] database_url is set: there is no archive to write to")?;
    // A connection for each archive loop, one for the relay and one for retention.
    let pool = PgPoolOptions::new()
        .max_connections(archive.loops as u32 + 2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .context("connecting to the archive database")?;
    schema::migrate(&pool).await?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        println!("archive schema at version {}", schema::latest_version());
        return Ok(());
    }
    let broker = Broker::open(&settings.redis, settings.result_ttl()).await?;
    let consumer = format!("{}-{}", hostname(), std::process::id());
    let relay = Relay::new(broker.clone(), pool.clone(), celeriac::catalog::Catalog::new(&settings.tasks));
    // Several loops, each a consumer of its own: they take disjoint batches from the group,
    // so one process writes several batches at once.
    let archivers: Vec<Archiver> = (0..archive.loops)
        .map(|i| Archiver::new(broker.clone(), pool.clone(), archive.clone(), format!("{consumer}-{i}")))
        .collect();
    tracing::info!(consumer, loops = archivers.len(), "archiving");
    let stop = celeriac::shutdown::on_signal();
    let retention = tokio::spawn(retention::run(
        pool.clone(),
        settings.archive.retention.clone(),
        stop.clone().cancelled_owned(),
    ));
    let relaying = tokio::spawn({
        let stop = stop.clone();
        async move { relay.run(stop.cancelled_owned()).await }
    });
    futures::future::join_all(archivers.iter().map(|a| a.run(stop.clone().cancelled_owned()))).await;
    let _ = relaying.await;
    let _ = retention.await;
    telemetry.shutdown();
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "archiver".into())
}
