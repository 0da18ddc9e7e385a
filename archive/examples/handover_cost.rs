//! What the archive's hand-over costs Redis: runs the same small batch of tasks (enqueue,
//! claim, start, finish in batches of 100, as a worker does) with the archive off and on, on a
//! fresh redis-server each, and prints the Redis CPU time of the finish script per task, from
//! `INFO commandstats` (reset just before the finishes). Not a benchmark: a small, single run.
//!
//!     cargo run -p celeriac-archive --example handover_cost [tasks]
//!
//! For instruction counts, steadier than CPU time on a shared machine, put first on PATH a
//! `redis-server` script that runs the real one under `valgrind --tool=callgrind`: each server
//! is shut down at the end of its run, so callgrind writes its totals; the archive's cost per
//! task is the difference of the two totals divided by `tasks`.

use std::time::Duration;

mod common;

use celeriac::{Broker, QueueName};
use celeriac_testkit::{RedisServer, unique_namespace};

const BATCH: usize = 100;

#[tokio::main]
async fn main() {
    let tasks: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(5000);
    for archive in [false, true] {
        let redis = RedisServer::start();
        let broker = Broker::connect(&redis.url(), &unique_namespace(), Duration::from_secs(3600))
            .unwrap()
            .with_archive(archive);
        let (usec, memory) = finish_cost(&broker, tasks).await;
        println!(
            "archive {}: finish.lua {:.2} us of Redis CPU per task ({} tasks), used_memory after: {} KB",
            if archive { "on " } else { "off" },
            usec as f64 / tasks as f64,
            tasks,
            memory / 1024
        );
    }
}

/// Redis CPU time (us) of every finish call for `tasks` tasks, and Redis' memory afterwards.
async fn finish_cost(broker: &Broker, tasks: usize) -> (u64, u64) {
    let queue = QueueName::parse("default").unwrap();
    let mut conn = broker.connection();
    let mut runs = Vec::new();
    for chunk in 0..tasks.div_ceil(BATCH) {
        let n = BATCH.min(tasks - chunk * BATCH);
        let outcomes = common::started_emails(broker, &queue, n).await;
        runs.push(outcomes);
    }
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.unwrap();
    for outcomes in &runs {
        broker.finish(&queue, "w1", outcomes).await.unwrap();
    }
    let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    let usec = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .and_then(|l| l.split(',').find_map(|kv| kv.strip_prefix("usec=")))
        .and_then(|v| v.parse().ok())
        .expect("evalsha stats");
    let memory: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await.unwrap();
    let used = memory
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // A server run under a profiler (valgrind's callgrind, by a `redis-server` wrapper first
    // on PATH) writes its counts only when it exits on its own.
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("NOSAVE").query_async(&mut conn).await;
    (usec, used)
}
