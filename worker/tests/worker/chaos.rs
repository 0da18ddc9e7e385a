//! The chaos command: enqueue tasks for a while as workers are SIGKILLed, SIGTERMed and
//! restarted and Redis restarts (with AOF), then report accepted, finished, lost and
//! redelivered counts. Its Cluster mode does the same on a local Cluster (three masters with
//! a replica each) and a queue of three shards, killing a master at random (its replica takes
//! over; a Redis fault after that starts it again, as a replica) besides the workers, with
//! `durability = "replicated"`. Slow, so not part of the suite:
//!
//!     scripts/chaos.sh            (CHAOS_SECS=30 by default)
//!     scripts/chaos.sh --cluster

use std::time::{Duration, Instant};

use celeriac::broker::NewTask;
use celeriac::settings::Durability;
use celeriac::{Broker, QueueName, TaskId, TaskState};
use celeriac_testkit::{RedisCluster, unique_namespace};
use serde_json::json;

use crate::common::{Setup, WorkerProcess};
use crate::failover;

fn chaos_secs() -> u64 {
    std::env::var("CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30)
}

/// A batch of 20 short tasks for `queue`.
fn batch(queue: &QueueName) -> Vec<NewTask> {
    (0..20)
        .map(|i| NewTask::new(queue, "sleep", &json!({"ms": fastrand::u64(0..=20) + i % 2})))
        .collect()
}

/// Stops a worker picked at random, with SIGKILL (`kill`) or with SIGTERM and a wait for
/// its graceful exit, and starts another in its place.
fn replace_a_worker(workers: &mut [WorkerProcess], kill: bool, start: impl Fn() -> WorkerProcess) {
    let i = fastrand::usize(..workers.len());
    if kill {
        workers[i].kill();
    } else {
        workers[i].terminate();
        workers[i].wait_exit(Duration::from_secs(15));
    }
    workers[i] = start();
}

/// Waits (up to two minutes) for every accepted task to succeed: (finished, lost, redelivered).
async fn outcome(broker: &Broker, accepted: &[TaskId]) -> (usize, usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut finished, mut lost, mut redelivered) = (0, 0, 0);
    for id in accepted {
        loop {
            let record = broker.get(id).await.ok().flatten();
            match record {
                Some(r) if r.state == TaskState::Success => {
                    finished += 1;
                    if r.deliveries > 1 {
                        redelivered += 1;
                    }
                    break;
                }
                other if Instant::now() > deadline => {
                    if lost < 5 {
                        let seen = other.map(|r| format!("{:?}, {} deliveries, worker {:?}", r.state, r.deliveries, r.worker));
                        eprintln!("not finished: {id}: {}", seen.unwrap_or_else(|| "no record".into()));
                    }
                    lost += 1;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    (finished, lost, redelivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: run with scripts/chaos.sh"]
async fn chaos() {
    let secs = chaos_secs();
    let mut setup = Setup::new(celeriac_testkit::RedisServer::start_persistent());
    let queue = QueueName::parse("default").unwrap();
    let mut workers: Vec<WorkerProcess> = (0..3).map(|_| setup.worker(8)).collect();
    let (mut kills, mut terms, mut redis_restarts, mut refused) = (0, 0, 0, 0);
    let mut accepted = Vec::new();
    let started = Instant::now();
    let mut next_fault = Instant::now() + Duration::from_millis(fastrand::u64(300..1500));
    while started.elapsed() < Duration::from_secs(secs) {
        let batch = batch(&queue);
        match setup.broker.enqueue(&queue, &batch, 0, None).await {
            Ok(_) => accepted.extend(batch.into_iter().map(|t| t.id)),
            Err(_) => refused += 1,
        }
        if Instant::now() >= next_fault {
            match fastrand::u8(0..10) {
                0..=4 => {
                    replace_a_worker(&mut workers, true, || setup.worker(8));
                    kills += 1;
                }
                5..=7 => {
                    replace_a_worker(&mut workers, false, || setup.worker(8));
                    terms += 1;
                }
                _ => {
                    setup.redis.restart();
                    redis_restarts += 1;
                }
            }
            next_fault = Instant::now() + Duration::from_millis(fastrand::u64(300..1500));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (finished, lost, redelivered) = outcome(&setup.broker, &accepted).await;
    println!(
        "chaos for {secs}s: {kills} SIGKILLs, {terms} SIGTERMs, {redis_restarts} Redis restarts; {refused} enqueue batches refused while Redis was down"
    );
    println!(
        "accepted {}, finished {finished}, lost {lost}, redelivered after a kill {redelivered}",
        accepted.len()
    );
    setup.assert_invariants().await;
    assert_eq!(lost, 0, "no accepted task may be lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: run with scripts/chaos.sh --cluster"]
async fn chaos_cluster() {
    let secs = chaos_secs();
    let mut cluster = RedisCluster::start();
    let (url, namespace) = (cluster.url(), unique_namespace());
    let settings = failover::settings(&url, &namespace, Durability::Replicated);
    let broker = Broker::open(&settings, Duration::from_secs(3600)).await.unwrap();
    let queue = QueueName::parse("default").unwrap();
    broker.raise_shards(&queue, 3).await.unwrap();
    let worker = || failover::worker(&url, &namespace, Durability::Replicated);
    let mut workers: Vec<WorkerProcess> = (0..3).map(|_| worker()).collect();
    let (mut kills, mut terms, mut master_kills, mut refused) = (0, 0, 0, 0);
    // The killed master and its replica's port: the master starts again at a Redis fault once
    // that replica has taken over (two masters down at once, or a master and its replica,
    // would be a lost Cluster, not a failover; and a master without persistence that comes
    // back before its replica took over comes back empty, and the replica then copies that).
    let mut down: Option<(usize, u16)> = None;
    let mut accepted = Vec::new();
    let started = Instant::now();
    let mut next_fault = Instant::now() + Duration::from_millis(fastrand::u64(300..1500));
    while started.elapsed() < Duration::from_secs(secs) {
        let shard = broker.pick_shard(&queue, None).await;
        let batch = batch(&shard);
        match broker.enqueue(&shard, &batch, 0, None).await {
            Ok(_) => accepted.extend(batch.into_iter().map(|t| t.id)),
            Err(_) => refused += 1,
        }
        if Instant::now() >= next_fault {
            match fastrand::u8(0..10) {
                0..=4 => {
                    replace_a_worker(&mut workers, true, worker);
                    kills += 1;
                }
                5..=6 => {
                    replace_a_worker(&mut workers, false, worker);
                    terms += 1;
                }
                _ => match down {
                    Some((index, replica)) => {
                        if cluster.is_master(replica) {
                            assert!(cluster.restart_node(index), "the killed master starts again");
                            down = None;
                        }
                    }
                    None => {
                        let masters = cluster.masters_with_replica();
                        if !masters.is_empty() {
                            let index = masters[fastrand::usize(..masters.len())];
                            let replica = cluster.replica_of(index).expect("a master with a replica");
                            cluster.kill_node(index);
                            down = Some((index, replica));
                            master_kills += 1;
                        }
                    }
                },
            }
            next_fault = Instant::now() + Duration::from_millis(fastrand::u64(300..1500));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some((index, replica)) = down {
        let until = Instant::now() + Duration::from_secs(20);
        while !cluster.is_master(replica) {
            assert!(Instant::now() < until, "the replica of the killed master took over within 20 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(cluster.restart_node(index), "the killed master starts again");
    }
    let (finished, lost, redelivered) = outcome(&broker, &accepted).await;
    println!(
        "chaos on a Cluster for {secs}s: {kills} worker SIGKILLs, {terms} SIGTERMs, {master_kills} masters SIGKILLed; {refused} enqueue batches refused (a failover under way, or a promoted master without its replica yet)"
    );
    println!(
        "accepted {}, finished {finished}, lost {lost}, redelivered after a kill {redelivered}",
        accepted.len()
    );
    assert_eq!(lost, 0, "no accepted task may be lost");
}
