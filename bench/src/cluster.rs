//! `--cluster`: the same work on one node and on local Redis Clusters of three masters, in one
//! run: enqueue and drain of a queue of `shards` shards, Redis CPU per task on every node (and
//! the time its scripts took), how evenly the tasks spread over the masters, and the cost
//! of `durability = "replicated"`. The Cluster without replicas is the one node's like for
//! like; the one with a replica per master adds what feeding the replicas costs the masters.
//! All the nodes share this machine's cores, so the Cluster cannot be faster here; what the
//! figures show is whether the work per task grows and whether the load spreads.

use std::time::{Duration, Instant};

use celeriac::settings::{Durability, RedisSettings};
use celeriac::{Broker, QueueName};
use celeriac_testkit::{RedisCluster, RedisServer};
use serde_json::Value;

use crate::measures::enqueue_noops;
use crate::procs;
use crate::redis_stats;
use crate::report::Report;

/// Sizes of the Cluster run.
#[derive(Debug, Clone, Copy)]
pub struct ClusterSizes {
    /// No-op tasks enqueued and drained on each target.
    pub tasks: usize,
    pub concurrency: usize,
    /// Shards of the bench's queue (each its own hash tag, so the Cluster spreads them).
    pub shards: u32,
}

/// One Redis to measure: its URL, its nodes' ports, and the durability asked.
struct Target<'a> {
    name: &'a str,
    url: String,
    ports: Vec<u16>,
    durability: Durability,
}

pub async fn run(report: &mut Report, sizes: ClusterSizes) -> anyhow::Result<()> {
    let single = RedisServer::start_single();
    let bare = RedisCluster::start_with(0);
    let cluster = RedisCluster::start();
    let targets = [
        Target {
            name: "one node",
            url: single.url(),
            ports: vec![single.port()],
            durability: Durability::Async,
        },
        Target {
            name: "Cluster, 3 masters without replicas",
            url: bare.url(),
            ports: bare.ports(),
            durability: Durability::Async,
        },
        Target {
            name: "Cluster, 3 masters with a replica each",
            url: cluster.url(),
            ports: cluster.ports(),
            durability: Durability::Async,
        },
        Target {
            name: "Cluster, durability replicated",
            url: cluster.url(),
            ports: cluster.ports(),
            durability: Durability::Replicated,
        },
    ];
    for (i, target) in targets.iter().enumerate() {
        measure(report, target, &format!("bench-cluster-{}-{i}", std::process::id()), sizes).await?;
    }
    Ok(())
}

async fn measure(report: &mut Report, target: &Target<'_>, namespace: &str, sizes: ClusterSizes) -> anyhow::Result<()> {
    let settings = RedisSettings {
        url: target.url.clone(),
        namespace: namespace.to_owned(),
        durability: target.durability,
        ..RedisSettings::default()
    };
    let broker = Broker::open(&settings, Duration::from_secs(3600)).await?;
    let queue = QueueName::parse("bench").expect("valid queue");
    broker.raise_shards(&queue, sizes.shards).await?;
    let n = sizes.tasks;
    let name = target.name;
    reset_command_stats(&target.ports).await?;
    let cpu_before = nodes_cpu(&target.ports).await?;

    let callers = 4;
    let started = Instant::now();
    let calls = (0..callers).map(|_| {
        let (broker, queue) = (broker.clone(), queue.clone());
        async move {
            for _ in 0..n / callers / 100 {
                let shard = broker.pick_shard(&queue, None).await;
                enqueue_noops(&broker, &shard, 100, 100, &Value::Null).await?;
            }
            anyhow::Ok(())
        }
    });
    for r in futures::future::join_all(calls).await {
        r?;
    }
    let enqueued = n / callers / 100 * callers * 100;
    report.add(
        &format!("{name}: enqueue, batches of 100, {callers} callers"),
        enqueued as f64 / started.elapsed().as_secs_f64(),
        "tasks/s",
    );

    let durability = match target.durability {
        Durability::Async => "async",
        Durability::Replicated => "replicated",
    };
    let env = [
        ("CELERIAC__REDIS__URL", target.url.clone()),
        ("CELERIAC__REDIS__NAMESPACE", namespace.to_owned()),
        ("CELERIAC__REDIS__DURABILITY", durability.to_owned()),
    ];
    let concurrency = sizes.concurrency.to_string();
    let started = Instant::now();
    let worker = procs::spawn("celeriac-worker", &["--queues", "bench", "--concurrency", &concurrency], &env)?;
    let shards = broker.shards_of(&queue).await?;
    let mut conn = broker.connection();
    loop {
        let mut done = 0u64;
        for shard in &shards {
            let succeeded: Option<u64> = redis::AsyncCommands::hget(&mut conn, broker.keys().stats(shard), "succeeded").await?;
            done += succeeded.unwrap_or(0);
        }
        if done >= enqueued as u64 {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "{name}: {done} of {enqueued} drained in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    report.add(
        &format!("{name}: drain, 1 worker, concurrency {concurrency}"),
        enqueued as f64 / started.elapsed().as_secs_f64(),
        "tasks/s",
    );
    worker.stop();

    let cpu_after = nodes_cpu(&target.ports).await?;
    let per_task: Vec<f64> = cpu_before
        .iter()
        .zip(&cpu_after)
        .map(|(before, after)| (after - before) * 1e6 / enqueued as f64)
        .collect();
    // Each node's port and CPU per task, masters and replicas apart.
    let mut masters: Vec<(u16, f64)> = Vec::new();
    let mut replicas: Vec<f64> = Vec::new();
    for (port, cpu) in target.ports.iter().zip(&per_task) {
        if is_master(*port).await? {
            masters.push((*port, *cpu));
        } else {
            replicas.push(*cpu);
        }
    }
    let master_ports: Vec<u16> = masters.iter().map(|(port, _)| *port).collect();
    let in_scripts = script_usec(&master_ports).await? / enqueued as f64;
    if per_task.len() == 1 {
        report.add(&format!("{name}: Redis CPU per task (enqueue to ack)"), per_task[0], "µs");
        report.add(&format!("{name}: time in scripts per task (wall clock)"), in_scripts, "µs");
    } else {
        report.add(
            &format!("{name}: Redis CPU per task (enqueue to ack), the masters together"),
            masters.iter().map(|(_, cpu)| cpu).sum(),
            "µs",
        );
        report.add(
            &format!("{name}: Redis CPU per task, the busiest master"),
            masters.iter().map(|(_, cpu)| *cpu).fold(0.0, f64::max),
            "µs",
        );
        report.add(
            &format!("{name}: time in scripts per task (wall clock), the masters together"),
            in_scripts,
            "µs",
        );
        if !replicas.is_empty() {
            report.add(
                &format!("{name}: Redis CPU per task, the replicas together"),
                replicas.iter().sum(),
                "µs",
            );
        }
        let (busiest, quietest) = master_shares(&target.ports, namespace).await?;
        report.add(&format!("{name}: task records on the busiest master"), busiest, "%");
        report.add(&format!("{name}: task records on the quietest master"), quietest, "%");
    }
    Ok(())
}

/// A plain connection to one node (INFO, DBSIZE and ROLE are answered by the node itself).
async fn node(port: u16) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    Ok(redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_multiplexed_async_connection()
        .await?)
}

/// Whether the node on `port` is a master (`ROLE`).
async fn is_master(port: u16) -> anyhow::Result<bool> {
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut node(port).await?).await?;
    Ok(matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"master"))
}

/// Each node's CPU seconds (user + system) so far.
async fn nodes_cpu(ports: &[u16]) -> anyhow::Result<Vec<f64>> {
    let mut cpu = Vec::with_capacity(ports.len());
    for port in ports {
        cpu.push(redis_stats::cpu(&mut node(*port).await?).await?.as_secs_f64());
    }
    Ok(cpu)
}

/// Clears every node's command counters, so [`script_usec`] reads one target's run.
async fn reset_command_stats(ports: &[u16]) -> anyhow::Result<()> {
    for port in ports {
        redis_stats::reset(&mut node(*port).await?).await?;
    }
    Ok(())
}

/// The microseconds the nodes spent running scripts since the counters were cleared (the
/// commands inside them included). Commandstats times a call by the clock, not by CPU: a node
/// that waits for a core in the middle of a script counts the wait, so on a machine whose
/// cores the nodes share this may exceed their CPU time (it did on the Cluster, here).
async fn script_usec(ports: &[u16]) -> anyhow::Result<f64> {
    let mut usec = 0.0;
    for port in ports {
        let stats = redis_stats::commands(&mut node(*port).await?).await?;
        usec += stats
            .iter()
            .filter(|c| c.name == "evalsha" || c.name == "eval")
            .map(|c| c.usec)
            .sum::<f64>();
    }
    Ok(usec)
}

/// The busiest and the quietest master's share of this run's keys (`namespace`'s: nearly all
/// of them task records), in %.
async fn master_shares(ports: &[u16], namespace: &str) -> anyhow::Result<(f64, f64)> {
    let mut counts = Vec::new();
    for port in ports {
        let mut conn = node(*port).await?;
        if !is_master(*port).await? {
            continue;
        }
        let (mut cursor, mut keys) = (0u64, 0usize);
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{namespace}:*"))
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut conn)
                .await?;
            keys += batch.len();
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        counts.push(keys as f64);
    }
    let total: f64 = counts.iter().sum::<f64>().max(1.0);
    let busiest = counts.iter().copied().fold(0.0, f64::max);
    let quietest = counts.iter().copied().fold(f64::MAX, f64::min);
    Ok((busiest / total * 100.0, quietest / total * 100.0))
}
