//! Where the archiver's ingest spends its CPU: fills one queue's archive stream with `tasks`
//! endings (enqueue, claim, start and finish in batches of 100, as a worker does, archive on),
//! then runs `loops` archive loops in this process against a PostgreSQL of its own until the
//! stream is empty, and prints the ingest rate and the CPU time each process kind took
//! meanwhile (this archiver, redis-server, postgres), per task. Not a benchmark: one run.
//!
//!     cargo run --release -p celeriac-archive --example ingest_cost [tasks] [loops]
//!
//! With `loops` 0 it only fills the stream: under `valgrind --tool=callgrind`, a run with loops
//! less one without is what the archive loops cost, in instructions (steadier than CPU time on
//! a shared machine, and this VM's `perf` has no hardware counters).

use std::time::{Duration, Instant};

mod common;

use celeriac::{Broker, QueueName};
use celeriac_archive::sqlx::postgres::PgPoolOptions;
use celeriac_archive::{ArchiveSettings, Archiver};
use celeriac_testkit::proc_stat::cpu_by_name;
use celeriac_testkit::{PostgresServer, RedisServer, unique_namespace};

const BATCH: usize = 100;

/// The allocator celeriac-archiver runs with.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let tasks = args.next().unwrap_or(100_000);
    let loops = args.next().unwrap_or(4);
    let redis = RedisServer::start();
    let broker = Broker::connect(&redis.url(), &unique_namespace(), Duration::from_secs(3600))
        .unwrap()
        .with_archive(true);
    let queue = QueueName::parse("default").unwrap();
    fill(&broker, &queue, tasks).await;
    if loops == 0 {
        return; // the fill alone, to subtract from a profile of the whole run
    }

    let pg = PostgresServer::start();
    let url = pg.fresh_database();
    let pool = PgPoolOptions::new().max_connections(loops as u32 + 1).connect(&url).await.unwrap();
    celeriac_archive::schema::migrate(&pool).await.unwrap();
    // The batch and the other settings as celeriac-archiver reads them (CELERIAC_ARCHIVE_*).
    let settings = ArchiveSettings {
        database_url: Some(url),
        ..ArchiveSettings::from_env().expect("CELERIAC_ARCHIVE_* settings")
    };
    let stream = broker.keys().archive(&queue);
    let before = cpu_by_name();
    let started = Instant::now();
    let stop = tokio_util::sync::CancellationToken::new();
    let runs: Vec<_> = (0..loops)
        .map(|i| {
            let archiver = Archiver::new(broker.clone(), pool.clone(), settings.clone(), format!("ingest-{i}"));
            let stop = stop.clone();
            tokio::spawn(async move { archiver.run(stop.cancelled_owned()).await })
        })
        .collect();
    let mut conn = broker.connection();
    loop {
        let left: u64 = redis::cmd("XLEN").arg(&stream).query_async(&mut conn).await.unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let after = cpu_by_name();
    stop.cancel();
    for run in runs {
        run.await.unwrap();
    }
    println!(
        "{tasks} endings, {loops} loops: {:.0} tasks/s ({:.2} s)",
        tasks as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    let mut spent: Vec<(String, f64)> = after
        .iter()
        .map(|(name, t)| {
            (
                name.clone(),
                t.saturating_sub(before.get(name).copied().unwrap_or_default()).as_secs_f64(),
            )
        })
        .filter(|(_, t)| *t > 0.01)
        .collect();
    spent.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (name, seconds) in spent {
        println!(
            "  {name:<20} {:>6.2} s CPU, {:>6.1} us per task",
            seconds,
            seconds * 1e6 / tasks as f64
        );
    }
}

/// Ends `tasks` tasks with the archive on, so their endings wait in the queue's stream.
async fn fill(broker: &Broker, queue: &QueueName, tasks: usize) {
    for chunk in 0..tasks.div_ceil(BATCH) {
        let n = BATCH.min(tasks - chunk * BATCH);
        let outcomes = common::started_emails(broker, queue, n).await;
        broker.finish(queue, "w1", &outcomes).await.unwrap();
    }
}
