//! The broker on a real Redis Cluster (three masters, each with a replica), whatever
//! `CELERIAC_TEST_REDIS` says: a workflow whose members live in queues on different nodes,
//! reads that span queues (admin counts, listings, the audit's walk of every master), blocking waits and events, and the
//! start-up check (a node not in cluster mode fails in one line; a Cluster that is down does
//! not stop a start).

use std::collections::HashSet;
use std::time::Duration;

use celeriac::broker::{Claim, ListFilter, NewTask, QueueWaiter, TaskEvents, new_claim_token};
use celeriac::workflow::{Plan, Step};
use celeriac::{Broker, QueueName, TaskState};
use celeriac_testkit::{RedisCluster, RedisServer, eventually};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::{TTL, broker_on, settings_for, start_and_succeed};

/// Claims, starts and finishes (successfully, with `1`) whatever is pending on `queue`.
async fn run_pending(broker: &Broker, queue: &QueueName) -> usize {
    let Claim::Ids(ids) = broker
        .claim(queue, "w1", 10, Duration::from_secs(30), &new_claim_token())
        .await
        .unwrap()
    else {
        panic!("paused")
    };
    let outcomes = start_and_succeed(broker, queue, "w1", &ids, "1").await;
    broker.process_workflow_outbox(queue).await.unwrap();
    outcomes.len()
}

/// The hash tags of the namespace's keys held by each master.
fn tags_per_node(cluster: &RedisCluster, ns: &str) -> Vec<HashSet<String>> {
    (0..cluster.ports().len())
        .map(|i| {
            let mut conn = redis::Client::open(cluster.node_url(i)).unwrap().get_connection().unwrap();
            let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{ns}:*")).query(&mut conn).unwrap_or_default();
            keys.iter()
                .filter_map(|k| Some(k[k.find('{')? + 1..k.find('}')?].to_owned()))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_workflow_across_queues_on_different_nodes_runs_and_is_counted_and_listed() {
    let cluster = RedisCluster::start();
    let broker = broker_on(&cluster.url()).await;
    let ns = broker.keys().namespace().to_owned();
    let queues: Vec<QueueName> = (0..6).map(|i| QueueName::parse(&format!("q{i}")).unwrap()).collect();
    let steps = queues
        .iter()
        .map(|q| Step {
            queue: Some(q.to_string()),
            ..Step::task("add", json!([1]))
        })
        .collect();
    let plan = Plan::compile(&Step::chain(steps)).unwrap();
    let workflow = broker.start_workflow(&plan).await.unwrap();

    let mut ran = 0;
    for _round in 0..queues.len() * 2 {
        for q in &queues {
            ran += run_pending(&broker, q).await;
        }
    }
    let status = broker.workflow_status(&workflow.workflow_id).await.unwrap().unwrap();
    assert_eq!((status.state.as_str(), ran), ("SUCCESS", queues.len()), "{status:?}");

    // The queues' keys really are spread: more than one master holds some.
    let masters_used = tags_per_node(&cluster, &ns).iter().filter(|tags| !tags.is_empty()).count();
    assert!(masters_used >= 2, "the six queues' keys sit on {masters_used} node(s)");

    // Reads spanning queues (one pipeline over several slots) see every queue.
    let overviews = broker.queue_overviews().await.unwrap();
    let counted: HashSet<String> = overviews.iter().filter(|o| o.enqueued_total == 1).map(|o| o.name.clone()).collect();
    assert_eq!(counted, queues.iter().map(|q| q.to_string()).collect::<HashSet<_>>());
    let page = broker.list_tasks(&ListFilter::default(), 50, 1000, None).await.unwrap();
    assert_eq!(page.tasks.len(), queues.len());
    assert!(page.tasks.iter().all(|t| t.state == TaskState::Success));
    let stats = broker.queue_stats().await.unwrap();
    assert_eq!(stats.len(), queues.len());
    // The audit walks every master's keys, not one node's.
    let report = broker.audit().await.unwrap();
    assert_eq!((report.tasks, report.is_clean()), (queues.len(), true), "{:?}", report.problems);
}

#[tokio::test]
async fn a_waiter_wakes_on_its_queues_node_and_events_reach_a_subscriber() {
    let cluster = RedisCluster::start();
    let broker = broker_on(&cluster.url()).await;
    let stop = CancellationToken::new();
    let events = TaskEvents::spawn(&broker, stop.clone());
    let mut rx = events.subscribe();
    // The subscription is live once its resync marker arrives.
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();

    for name in ["alpha", "beta", "gamma"] {
        let queue = QueueName::parse(name).unwrap();
        let mut waiter = QueueWaiter::new(&broker, &queue);
        let wait = tokio::spawn(async move { waiter.wait_for_work(Duration::from_secs(10)).await });
        // The waiter blocks (BLMOVE) before the task arrives; then it must wake.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let task = NewTask::new(&queue, "echo", &json!(name));
        broker.enqueue(&queue, std::slice::from_ref(&task), 0, None).await.unwrap();
        let woke = tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("the waiter woke")
            .unwrap()
            .unwrap();
        assert!(woke, "queue {name} has work");
        // Its start and end are published by scripts on the queue's node.
        assert_eq!(run_pending(&broker, &queue).await, 1);
        let wanted = task.id.to_string();
        eventually(Duration::from_secs(5), "the task's enqueue event", || {
            let seen = std::iter::from_fn(|| rx.try_recv().ok()).any(|m| *m == *wanted);
            async move { seen.then_some(()) }
        })
        .await;
    }
    stop.cancel();
}

#[tokio::test]
async fn a_node_not_in_cluster_mode_fails_at_start_in_one_line() {
    let single = RedisServer::start_single();
    let url = format!("redis+cluster://127.0.0.1:{}", single.port());
    let error = Broker::open(&settings_for(&url), TTL).await.unwrap_err().to_string();
    assert!(error.contains("not in cluster mode"), "{error}");
    assert!(!error.contains('\n'), "{error}");
}

#[tokio::test]
async fn a_cluster_that_is_down_does_not_stop_a_start() {
    let port = celeriac_testkit::free_port();
    let broker = Broker::open(&settings_for(&format!("redis+cluster://127.0.0.1:{port}")), TTL)
        .await
        .unwrap();
    assert!(broker.ping().await.is_err());
}
