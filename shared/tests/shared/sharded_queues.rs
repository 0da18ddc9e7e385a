//! Sharded queues (broker/shards.rs): a queue with `shards = N` is N queues in Redis, each
//! under its own hash tag. On one node (or the Cluster under `CELERIAC_TEST_REDIS=cluster`):
//! tasks spread evenly, a partition key keeps one shard and its order, ids name their shard
//! and read back in one step, and the admin's reads and writes (overview, listing, pause,
//! purge, dead letters) treat the shards as one queue. On a Cluster of three masters: the
//! shards' tasks spread over every master, each master gets an equal share even when the
//! shards' slots put more of them on one, and every task is claimed back.

use std::collections::HashMap;
use std::time::Duration;

use celeriac::broker::{Claim, ListFilter, NewTask, new_claim_token, shard_of_key};
use celeriac::{Broker, QueueName};
use celeriac_testkit::RedisCluster;
use serde_json::json;

use crate::common::{broker_on, redis_and_broker};

/// Enqueues `count` tasks on `queue`, each on the shard the broker picks (by `key` if given).
async fn enqueue_spread(broker: &Broker, queue: &QueueName, count: usize, key: Option<&str>) -> Vec<NewTask> {
    let mut tasks = Vec::new();
    for i in 0..count {
        let shard = broker.pick_shard(queue, key).await;
        let task = NewTask::new(&shard, "noop", &json!(i));
        broker.enqueue(&shard, std::slice::from_ref(&task), 0, None).await.unwrap();
        tasks.push(task);
    }
    tasks
}

/// How many task records each of the Cluster's three masters holds in namespace `ns`.
fn task_records_per_master(cluster: &RedisCluster, ns: &str) -> Vec<usize> {
    (0..3)
        .map(|i| {
            let mut conn = redis::Client::open(cluster.node_url(i)).unwrap().get_connection().unwrap();
            let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{ns}:*:t:*")).query(&mut conn).unwrap();
            keys.len()
        })
        .collect()
}

/// A three-master Cluster (no replicas), a broker on it, its namespace, and queue `name` raised
/// to `shards` shards.
async fn sharded_on_a_cluster(name: &str, shards: u32) -> (RedisCluster, Broker, String, QueueName) {
    let cluster = RedisCluster::start_with(0);
    let broker = broker_on(&cluster.url()).await;
    let ns = broker.keys().namespace().to_owned();
    let queue = QueueName::parse(name).unwrap();
    broker.raise_shards(&queue, shards).await.unwrap();
    (cluster, broker, ns, queue)
}

/// Claims everything pending on each of `shards`; the ids taken, per shard, in order.
async fn claim_all(broker: &Broker, shards: &[QueueName]) -> HashMap<QueueName, Vec<String>> {
    let mut taken = HashMap::new();
    for shard in shards {
        let Claim::Ids(ids) = broker
            .claim(shard, "w1", 10_000, Duration::from_secs(30), &new_claim_token())
            .await
            .unwrap()
        else {
            panic!("{shard} is paused")
        };
        taken.insert(shard.clone(), ids);
    }
    taken
}

#[tokio::test]
async fn a_sharded_queue_spreads_its_tasks_and_is_shown_paused_and_purged_as_one() {
    let (_redis, broker) = redis_and_broker();
    let queue = QueueName::parse("hot").unwrap();
    assert_eq!(broker.raise_shards(&queue, 4).await.unwrap(), 4);
    assert_eq!(broker.raise_shards(&queue, 2).await.unwrap(), 4, "never lowered");
    let shards = broker.shards_of(&queue).await.unwrap();
    assert_eq!(
        shards.iter().map(|q| q.as_str()).collect::<Vec<_>>(),
        ["hot", "hot~1", "hot~2", "hot~3"]
    );

    let tasks = enqueue_spread(&broker, &queue, 200, None).await;
    // Every id names its shard, and reads back in one step.
    for task in tasks.iter().step_by(37) {
        let record = broker.get(&task.id).await.unwrap().expect("the record");
        assert_eq!(record.task_id, task.id);
    }
    let overview = broker.queue_overview(&queue).await.unwrap();
    assert_eq!((overview.pending, overview.shards, overview.enqueued_total), (200, 4, 200));
    assert_eq!(overview.shard_pending, [50, 50, 50, 50], "in turn: evenly");
    let all = broker.queue_overviews().await.unwrap();
    assert_eq!(all.iter().map(|o| (o.name.as_str(), o.pending)).collect::<Vec<_>>(), [("hot", 200)]);
    let stats = broker.queue_stats().await.unwrap();
    assert_eq!((stats.len(), stats[0].queue.as_str(), stats[0].pending), (1, "hot", 200));

    // The listing of the queue merges its shards.
    let filter = ListFilter {
        queue: Some(queue.clone()),
        ..ListFilter::default()
    };
    let mut listed = 0;
    let mut cursor = None;
    loop {
        let page = broker.list_tasks(&filter, 100, 10_000, cursor).await.unwrap();
        listed += page.tasks.len();
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, 200);

    // Paused as one: no shard gives anything.
    broker.set_paused(&queue, true).await.unwrap();
    for shard in &shards {
        let claim = broker
            .claim(shard, "w1", 10, Duration::from_secs(30), &new_claim_token())
            .await
            .unwrap();
        assert_eq!(claim, Claim::Paused, "{shard}");
    }
    assert!(broker.queue_overview(&queue).await.unwrap().paused);
    broker.set_paused(&queue, false).await.unwrap();

    // Purged as one.
    assert_eq!(broker.purge(&queue).await.unwrap(), 200);
    assert_eq!(broker.queue_overview(&queue).await.unwrap().pending, 0);
}

#[tokio::test]
async fn a_partition_key_keeps_one_shard_and_its_order() {
    let (_redis, broker) = redis_and_broker();
    let queue = QueueName::parse("orders").unwrap();
    broker.raise_shards(&queue, 8).await.unwrap();
    let tasks = enqueue_spread(&broker, &queue, 30, Some("customer-42")).await;
    let shard = queue.shard(shard_of_key("customer-42", 8));
    assert!(tasks.iter().all(|t| t.id.queue() == &shard), "one shard for one key");
    let taken = claim_all(&broker, &broker.shards_of(&queue).await.unwrap()).await;
    let order: Vec<String> = tasks.iter().map(|t| t.id.suffix().to_owned()).collect();
    assert_eq!(taken[&shard], order, "taken in the order they were enqueued");
    assert_eq!(taken.values().map(Vec::len).sum::<usize>(), 30);
}

#[tokio::test]
async fn on_a_cluster_the_shards_spread_over_every_master_and_all_come_back() {
    // Where a shard lands is fixed by its name's slot: the six shards of `q` ('q', 'q~1' ...
    // 'q~5') hash to slots of which two fall in each master's third (redis-cli's split).
    let (cluster, broker, ns, queue) = sharded_on_a_cluster("q", 6).await;
    let tasks = enqueue_spread(&broker, &queue, 600, None).await;

    let per_master = task_records_per_master(&cluster, &ns);
    eprintln!("tasks per master, 6 shards of 'q': {per_master:?}");
    assert_eq!(per_master, [200, 200, 200], "in turn over six shards, two per master");

    let overview = broker.queue_overview(&queue).await.unwrap();
    assert_eq!((overview.pending, overview.shards), (600, 6));
    let taken = claim_all(&broker, &broker.shards_of(&queue).await.unwrap()).await;
    assert_eq!(taken.values().map(Vec::len).sum::<usize>(), tasks.len(), "every task claimed back");
}

#[tokio::test]
async fn on_a_cluster_each_master_gets_an_equal_share_whatever_the_shards_slots() {
    // The twelve shards of `bench` hash to slots that put 5, 3 and 4 of them on the three
    // masters (redis-cli's even split): going round the shards would give the masters 500,
    // 300 and 400 of 1,200 tasks.
    let (cluster, broker, ns, queue) = sharded_on_a_cluster("bench", 12).await;
    let mut seed = redis::Client::open(cluster.node_url(0)).unwrap().get_connection().unwrap();
    let slots: Vec<(i64, i64, Vec<redis::Value>)> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query::<Vec<Vec<redis::Value>>>(&mut seed)
        .unwrap()
        .into_iter()
        .map(|range| {
            let first: i64 = redis::from_redis_value(range[0].clone()).unwrap();
            let last: i64 = redis::from_redis_value(range[1].clone()).unwrap();
            (first, last, range[2..].to_vec())
        })
        .collect();
    let mut shards_per_range = vec![0; slots.len()];
    for shard in broker.shards_of(&queue).await.unwrap() {
        let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(shard.as_str()).query(&mut seed).unwrap();
        let range = slots.iter().position(|(first, last, _)| (*first..=*last).contains(&slot)).unwrap();
        shards_per_range[range] += 1;
    }
    shards_per_range.sort();
    assert_eq!(shards_per_range, [3, 4, 5], "the shards sit unevenly on the masters");

    enqueue_spread(&broker, &queue, 1200, None).await;
    let per_master = task_records_per_master(&cluster, &ns);
    eprintln!("tasks per master, 12 shards of 'bench' placed 3/4/5: {per_master:?}");
    assert_eq!(per_master, [400, 400, 400], "round the masters, then round each master's shards");
    // Every shard still gets tasks.
    let overview = broker.queue_overview(&queue).await.unwrap();
    assert!(overview.shard_pending.iter().all(|&n| n > 0), "{:?}", overview.shard_pending);
}
