//! Failover under load: the master is SIGKILLed (the Sentinel set's, or the Cluster master
//! holding the queue's slot) while a producer enqueues and two real worker processes drain.
//! The run must finish by itself (the producer's refusals last about the failover; the
//! workers resume without a restart), and with `durability = "replicated"` every task whose
//! enqueue was answered reaches SUCCESS: none is lost, and any run twice is counted and shown
//! (a claim or start that the dead master had not passed on yet: an explained redelivery).
//! The `async` runs print what happens without it (tasks may be lost), asserting only that
//! the run finishes.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use celeriac::broker::NewTask;
use celeriac::settings::{Durability, RedisSettings};
use celeriac::{Broker, QueueName, TaskId, TaskState};
use celeriac_testkit::{RedisCluster, RedisSentinel, unique_namespace};
use serde_json::json;

use crate::common::WorkerProcess;

/// How long the producer runs, when (from its start) the master is killed, and when it is
/// started again (it rejoins as a replica of the promoted one: until then the promoted master
/// has no replica, and `replicated` refuses every enqueue, as it promises).
const PRODUCE: Duration = Duration::from_secs(16);
const KILL_AT: Duration = Duration::from_secs(3);
const RESTART_AT: Duration = Duration::from_secs(9);

pub(crate) fn settings(url: &str, namespace: &str, durability: Durability) -> RedisSettings {
    RedisSettings {
        url: url.into(),
        namespace: namespace.into(),
        durability,
        replica_timeout: Duration::from_secs(1),
        ..RedisSettings::default()
    }
}

/// A worker on `default` (and its shards) with a 2 s lease.
pub(crate) fn worker(url: &str, namespace: &str, durability: Durability) -> WorkerProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_celeriac-worker"))
        .args(["--queues", "default", "--concurrency", "8"])
        .env("CELERIAC_CONFIG_DIR", "/nonexistent")
        .env("CELERIAC__REDIS__URL", url)
        .env("CELERIAC__REDIS__NAMESPACE", namespace)
        .env(
            "CELERIAC__REDIS__DURABILITY",
            if durability == Durability::Replicated {
                "replicated"
            } else {
                "async"
            },
        )
        .env("CELERIAC__REDIS__REPLICA_TIMEOUT", "1s")
        .env("CELERIAC__WORKER__LEASE_SECS", "2")
        .env("CELERIAC__WORKER__GRACE_SECS", "1")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn celeriac-worker");
    WorkerProcess { child }
}

/// What one run saw (printed through `Debug`).
#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Figures {
    accepted: usize,
    refused: usize,
    /// From the kill to the first enqueue answered after it.
    enqueue_gap: Duration,
    finished: usize,
    lost: usize,
    redelivered: usize,
    drained_in: Duration,
    /// Neither finished nor lost when the wait ended: (state, deliveries, worker) of each.
    stuck: Vec<String>,
    /// The kinds of error the producer met (each once).
    errors: std::collections::BTreeSet<String>,
}

/// Produces for [`PRODUCE`], calls `fault(true)` (kill) at [`KILL_AT`] and `fault(false)`
/// (restart) at [`RESTART_AT`], then waits (up to a minute) for every accepted task to end;
/// counts what became of them.
async fn run(url: &str, durability: Durability, mut fault: impl FnMut(bool)) -> Figures {
    let namespace = unique_namespace();
    let broker = Broker::open(&settings(url, &namespace, durability), Duration::from_secs(3600))
        .await
        .unwrap();
    let _workers = [worker(url, &namespace, durability), worker(url, &namespace, durability)];
    let queue = QueueName::parse("default").unwrap();
    let (mut killed, mut restarted) = (false, false);
    let (mut accepted, mut refused) = (Vec::<TaskId>::new(), 0);
    let mut errors = std::collections::BTreeSet::new();
    let (mut killed_at, mut enqueue_gap) = (None::<Instant>, None);
    let started = Instant::now();
    while started.elapsed() < PRODUCE {
        if started.elapsed() >= KILL_AT && !killed {
            fault(true);
            killed = true;
            killed_at = Some(Instant::now());
        }
        if started.elapsed() >= RESTART_AT && !restarted {
            fault(false);
            restarted = true;
        }
        let batch: Vec<NewTask> = (0..5).map(|_| NewTask::new(&queue, "sleep", &json!({"ms": 5}))).collect();
        match broker.enqueue(&queue, &batch, 0, None).await {
            Ok(_) => {
                accepted.extend(batch.into_iter().map(|t| t.id));
                if let (Some(at), None) = (killed_at, enqueue_gap) {
                    enqueue_gap = Some(at.elapsed());
                }
            }
            Err(e) => {
                errors.insert(e.to_string().chars().take(100).collect::<String>());
                refused += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain = Instant::now();
    let deadline = drain + Duration::from_secs(60);
    let (mut finished, mut lost, mut redelivered, mut stuck);
    loop {
        (finished, lost, redelivered, stuck) = (0, 0, 0, Vec::new());
        for id in &accepted {
            match broker.get(id).await {
                Ok(Some(r)) if r.state == TaskState::Success => {
                    finished += 1;
                    redelivered += usize::from(r.deliveries > 1);
                }
                Ok(None) => lost += 1,
                Ok(Some(r)) => stuck.push(format!("{id} {:?} deliveries {} worker {:?}", r.state, r.deliveries, r.worker)),
                Err(e) => stuck.push(format!("{id} unreadable: {e}")),
            }
        }
        if finished + lost == accepted.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Figures {
        accepted: accepted.len(),
        refused,
        enqueue_gap: enqueue_gap.unwrap_or(Duration::MAX),
        finished,
        lost,
        redelivered,
        drained_in: drain.elapsed(),
        stuck,
        errors,
    }
}

/// Kills the master of the Cluster slot of `default`'s keys; returns its index and its
/// replica's port.
fn kill_cluster_master_of_default(cluster: &mut RedisCluster) -> (usize, u16) {
    let mut conn = redis::Client::open(cluster.node_url(0)).unwrap().get_connection().unwrap();
    let slot: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg("{default}").query(&mut conn).unwrap();
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn).unwrap();
    let mut master_id = String::new();
    let mut master_port = 0u16;
    for line in nodes.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let serves = f[8..].iter().any(|range| match range.split_once('-') {
            Some((a, b)) => (a.parse().unwrap_or(u16::MAX)..=b.parse().unwrap_or(0)).contains(&slot),
            None => range.parse() == Ok(slot),
        });
        if f[2].contains("master") && serves {
            master_id = f[0].to_owned();
            master_port = f[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
        }
    }
    let replica_port: u16 = nodes
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f[3] == master_id)
        .map(|f| f[1].split(['@', ':']).nth(1).unwrap().parse().unwrap())
        .expect("the master has a replica");
    let index = cluster.ports().iter().position(|p| *p == master_port).unwrap();
    cluster.kill_node(index);
    (index, replica_port)
}

/// How long, from `killed`, the replica on `replica_port` took to report itself master.
fn wait_promoted(replica_port: u16, killed: Instant) -> Duration {
    let mut replica = redis::Client::open(format!("redis://127.0.0.1:{replica_port}"))
        .unwrap()
        .get_connection()
        .unwrap();
    while killed.elapsed() < Duration::from_secs(20) {
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut replica).unwrap();
        if matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"master") {
            return killed.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the replica of the killed master was not promoted within 20 s");
}

fn check(what: &str, figures: &Figures, durability: Durability) {
    eprintln!("{what} ({durability:?}): {figures:?}");
    assert!(figures.accepted > 0 && figures.enqueue_gap < Duration::from_secs(20), "{figures:?}");
    assert_eq!(figures.finished + figures.lost, figures.accepted, "the run finishes: {figures:?}");
    if durability == Durability::Replicated {
        assert_eq!(figures.lost, 0, "no accepted task is lost: {figures:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_master_killed_under_load_loses_no_accepted_task_when_replicated() {
    for durability in [Durability::Async, Durability::Replicated] {
        let mut set = RedisSentinel::start();
        let url = set.url();
        let figures = run(&url, durability, |kill| match kill {
            true => set.master.kill(),
            false => {
                assert!(set.master.restart(), "the old master starts again");
                // Made a replica of the promoted one at once, as the sentinels do on their
                // next look at it (up to 10 s later: their INFO period).
                let mut old = redis::Client::open(format!("redis://127.0.0.1:{}", set.master.port))
                    .unwrap()
                    .get_connection()
                    .unwrap();
                let () = redis::cmd("REPLICAOF")
                    .arg("127.0.0.1")
                    .arg(set.replica.port)
                    .query(&mut old)
                    .unwrap();
            }
        })
        .await;
        check("sentinel failover", &figures, durability);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_under_load_loses_no_accepted_task_when_replicated() {
    for durability in [Durability::Replicated, Durability::Async] {
        let mut cluster = RedisCluster::start();
        let url = cluster.url();
        let mut promotion = None;
        let mut killed_index = 0;
        let figures = run(&url, durability, |kill| {
            if kill {
                let killed = Instant::now();
                let (index, replica) = kill_cluster_master_of_default(&mut cluster);
                killed_index = index;
                promotion = Some(std::thread::spawn(move || wait_promoted(replica, killed)));
            } else {
                assert!(cluster.restart_node(killed_index), "the old master starts again");
            }
        })
        .await;
        let promoted = promotion.expect("killed").join().expect("the replica is promoted within 20 s");
        eprintln!("cluster failover: the replica reported role master {promoted:?} after the kill");
        check("cluster failover", &figures, durability);
    }
}
