//! `celeriac-bench`: measures Celeriac on this machine, on loopback, against its own
//! redis-server: enqueue rates, drain rate, pickup latency, HTTP enqueue, resource costs.
//! Prints one table and writes JSON. `--smoke` runs it in seconds, for CI (no assertions).

mod archive;
mod cluster;
mod keyspace;
mod latency;
mod lifecycle;
mod limits;
mod measures;
mod procs;
mod pull;
mod push;
mod redis_stats;
mod report;
mod scale;

use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Measure Celeriac: enqueue, drain, latency, HTTP and resource costs")]
// The "only" modes: each runs its own measures and ends, so one at a time.
#[command(group(clap::ArgGroup::new("mode").multiple(false).args([
    "lifecycle_only", "latency_only", "push", "archive", "cluster", "pull_python", "limits",
])))]
struct Args {
    /// A few seconds, small counts: proves the tool works, measures nothing meaningful.
    #[arg(long)]
    smoke: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench.json")]
    json: String,
    /// Worker concurrency for the drain and latency runs. No-op tasks hold a slot only while
    /// their batch is started and acknowledged, so many slots keep Redis busy: 1024 drained
    /// about 10% more than 512 in side-by-side runs here, and 2048 no more than 1024.
    #[arg(long, default_value_t = 1024)]
    concurrency: usize,
    /// Worker processes for the drain, each with `--concurrency` slots (the latency runs use
    /// the first). Redis bounds the drain here: two drained 126,000/s in two runs, one
    /// 118,000 and 126,000/s, minutes apart.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    workers: usize,
    /// Runtime threads of every worker process the bench starts (`worker.threads`). One by
    /// default: the bench runs Redis, itself and the workers on the same few cores, where a
    /// worker of one thread drained 7 to 12% more than one of a thread per core (the worker's
    /// own default) in interleaved runs here (docs/benchmarks.md, "The worker's runtime
    /// threads").
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    worker_threads: usize,
    /// Connections of the HTTP measure (`POST /emails`, 10 s).
    #[arg(long, default_value_t = 50, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    connections: usize,
    /// Tasks drained.
    #[arg(long, default_value_t = 100_000)]
    drain: usize,
    /// Use this Redis instead of starting one (loopback only, please; e.g. one run under a
    /// profiler). The bench works in a namespace of its own there.
    #[arg(long)]
    redis_url: Option<String>,
    /// Also measure reads and fetches with this many pending tasks (e.g. 1000000).
    #[arg(long)]
    scale: Option<usize>,
    /// Only the library lifecycle of `--drain` tasks from one client (the yardstick's method):
    /// the same commands every run, for a profiler.
    #[arg(long)]
    lifecycle_only: bool,
    /// Only the latency measures (enqueue to STARTED and SUCCESS, on an idle worker and under
    /// other producers' load), after a drain of `--drain` tasks starts the worker, then the
    /// same on the latency yardstick (`celeriac-latency-yardstick`, the cheapest worker): the
    /// part to run under a scheduler profile (`perf sched record`).
    #[arg(long)]
    latency_only: bool,
    /// Only the push path's overhead: drain this many native no-op tasks, then as many tasks
    /// of a remote type on a loopback endpoint, with one worker of `--concurrency` slots.
    #[arg(long)]
    push: Option<usize>,
    /// Only the archive's measures, on a PostgreSQL of its own: the drain of `--drain` no-op
    /// tasks with the archive off and on, the archiver's ingest rate, the outbox's
    /// commit-to-pending latency, and history search over `--archive-rows` archived tasks.
    #[arg(long)]
    archive: bool,
    /// Only the Cluster comparison: `--drain` no-op tasks enqueued and drained on one node,
    /// then on a local Cluster (three masters with a replica each), then on it with
    /// `durability = "replicated"`, on a queue of this many shards; Redis CPU per task on
    /// every node and the spread of tasks over the masters.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=64))]
    cluster: Option<u32>,
    /// Only the pull protocol's throughput with one Python worker process of this many
    /// threads: `bench/python/pull_throughput.py` (run with `--python`, against the gateway
    /// built beside this binary) claims and completes `--drain` no-op tasks over HTTP.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256))]
    pull_python: Option<usize>,
    /// The Python of `--pull-python`, with the pinned packages (scripts/python/env.sh makes it).
    #[arg(long, default_value = "target/pyenv/bin/python")]
    python: String,
    /// Only the flow limits' measures: `--drain` no-op tasks drained without limits and under
    /// a concurrency cap of 8, then 100/s through a rate limit with four workers, second by
    /// second over a minute.
    #[arg(long)]
    limits: bool,
    /// Archived tasks the history search of `--archive` runs over.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::builder::RangedU64ValueParser::<u64>::new().range(1..))]
    archive_rows: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    celeriac::tls::install_crypto_provider();
    procs::set_worker_threads(args.worker_threads);
    let sizes = if args.smoke {
        measures::Sizes {
            enqueue: 2_000,
            drain: 2_000,
            latency: 20,
            http: Duration::from_secs(1),
            idle: Duration::from_secs(1),
            concurrency: 16,
            // Two, so CI runs the drain's several-worker path too.
            workers: 2,
            connections: 8,
            load_per_second: 2_000,
        }
    } else {
        measures::Sizes {
            enqueue: 100_000,
            drain: args.drain,
            latency: 500,
            http: Duration::from_secs(10),
            idle: Duration::from_secs(10),
            concurrency: args.concurrency,
            workers: args.workers,
            connections: args.connections,
            load_per_second: 20_000,
        }
    };
    // Its own redis-server, unless told to use one (which it then fills under a fresh namespace).
    let own_redis = args.redis_url.is_none().then(celeriac_testkit::RedisServer::start);
    let redis_url = args
        .redis_url
        .clone()
        .or_else(|| own_redis.as_ref().map(|r| r.url()))
        .expect("a Redis URL");
    let namespace = format!("bench-{}", std::process::id());
    let broker = celeriac::Broker::connect(&redis_url, &namespace, Duration::from_secs(3600))?;
    println!(
        "celeriac-bench{} on {} ({} cores)",
        if args.smoke { " --smoke" } else { "" },
        celeriac::settings::redact_url(&redis_url),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    let mut bench = measures::Bench {
        broker,
        redis_url: redis_url.clone(),
        namespace,
        sizes,
        report: report::Report::default(),
    };
    if let Some(n) = args.push {
        let concurrency = if args.smoke { 16 } else { args.concurrency };
        bench.push(n, concurrency).await?;
        println!("\n{}", bench.report.table());
        return Ok(());
    }
    if let Some(threads) = args.pull_python {
        let tasks = if args.smoke { 200 } else { args.drain };
        pull::run(&mut bench.report, &args.python, tasks, threads)?;
        return finish(&bench.report, &args.json);
    }
    if let Some(shards) = args.cluster {
        let sizes = cluster::ClusterSizes {
            tasks: if args.smoke { 2_000 } else { args.drain },
            concurrency: if args.smoke { 16 } else { args.concurrency },
            shards,
        };
        cluster::run(&mut bench.report, sizes).await?;
        return finish(&bench.report, &args.json);
    }
    if args.limits {
        let sizes = limits::LimitsSizes {
            tasks: if args.smoke { 2_000 } else { args.drain },
            concurrency: if args.smoke { 16 } else { args.concurrency },
            cap: 8,
            rate: 100,
            rate_secs: if args.smoke { 2 } else { 60 },
        };
        let env = bench.env();
        limits::run(&bench.broker, &env, &mut bench.report, sizes).await?;
        return finish(&bench.report, &args.json);
    }
    if args.archive {
        let sizes = if args.smoke {
            archive::ArchiveSizes {
                tasks: 2_000,
                outbox: 20,
                rows: 10_000,
                searches: 3,
                concurrency: 16,
            }
        } else {
            archive::ArchiveSizes {
                tasks: args.drain,
                outbox: 500,
                rows: args.archive_rows,
                searches: 50,
                concurrency: args.concurrency,
            }
        };
        bench.archive(sizes).await?;
        return finish(&bench.report, &args.json);
    }
    if args.latency_only {
        bench.drain_then_latency().await?;
        return finish(&bench.report, &args.json);
    }
    {
        // On a redis-server of its own when the bench owns Redis, as the yardstick runs: an
        // empty keyspace, and no keys left behind for the measures after it.
        let own = args.redis_url.is_none().then(celeriac_testkit::RedisServer::start);
        let broker = match &own {
            Some(redis) => celeriac::Broker::connect(&redis.url(), &bench.namespace, Duration::from_secs(3600))?,
            None => bench.broker.clone(),
        };
        bench.lifecycle(&broker).await?;
    }
    if !args.lifecycle_only {
        bench.enqueue().await?;
        bench.drain_then_latency().await?;
        bench.enqueue_bulk().await?;
        bench.http().await?;
        let scale = args.scale.or(args.smoke.then_some(1_000));
        if let Some(n) = scale {
            scale::run(&bench.broker, &mut bench.report, n).await?;
        }
    }
    finish(&bench.report, &args.json)
}

/// Prints the table and writes the JSON.
fn finish(report: &report::Report, json: &str) -> anyhow::Result<()> {
    println!("\n{}", report.table());
    if let Some(dir) = std::path::Path::new(json).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(json, serde_json::to_string_pretty(report)?)?;
    println!("JSON: {json}");
    Ok(())
}
