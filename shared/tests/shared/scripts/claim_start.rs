//! Claim and start: oldest first, at most what was asked, leased in a hash table, nothing from a
//! paused queue, a claim asked again with its token, poison and old-layout records, and what a
//! run learns at start (its trace, its wait, from its due time when it had one).

use std::time::Duration;

use celeriac::TaskState;
use celeriac::broker::{Claim, NewTask, Started};
use redis::AsyncCommands;
use serde_json::json;

use super::{LEASE, claim_ids, echoes, push_poison, queue, run_one};
use crate::common::redis_and_broker;

#[tokio::test]
async fn claims_take_at_most_what_was_asked_oldest_first() {
    let (_redis, broker) = redis_and_broker();
    let tasks = echoes(5);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let first = claim_ids(&broker, "w1", 3).await;
    assert_eq!(first, tasks[..3].iter().map(|t| t.id.suffix().to_owned()).collect::<Vec<_>>());
    assert_eq!(claim_ids(&broker, "w2", 10).await.len(), 2);
    assert!(claim_ids(&broker, "w3", 10).await.is_empty());
}

#[tokio::test]
async fn the_in_flight_hash_is_a_hash_table_and_holds_only_ids_for_readers() {
    let (_redis, broker) = redis_and_broker();
    let tasks = echoes(3);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let ids = claim_ids(&broker, "w1", 3).await;
    let key = broker.keys().inflight(&queue(), "w1");
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(&key)
        .query_async(&mut broker.connection())
        .await
        .unwrap();
    assert_eq!(encoding, "hashtable", "a listpack would make each token lookup a scan");
    let mut leased = broker.leased(&queue(), "w1").await.unwrap();
    leased.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(leased, expected);
    let report = broker.audit().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    // Given back, the lease ends and the hash goes.
    assert_eq!(broker.requeue_own(&queue(), "w1", &ids).await.unwrap(), 3);
    let exists: bool = broker.connection().exists(&key).await.unwrap();
    assert!(!exists);
    assert!(broker.expired_leases(&queue()).await.unwrap().is_empty());
    let leases: Vec<String> = broker.connection().zrange(broker.keys().leases(&queue()), 0, -1).await.unwrap();
    assert!(leases.is_empty(), "{leases:?}");
}

#[tokio::test]
async fn a_paused_queue_gives_nothing() {
    let (_redis, broker) = redis_and_broker();
    broker
        .enqueue(&queue(), &[NewTask::new(&queue(), "echo", &json!(1))], 0, None)
        .await
        .unwrap();
    broker
        .connection()
        .set::<_, _, ()>(broker.keys().paused(&queue()), 1)
        .await
        .unwrap();
    assert_eq!(broker.claim(&queue(), "w1", 5, LEASE, "t1").await.unwrap(), Claim::Paused);
}

#[tokio::test]
async fn a_claim_asked_again_with_its_token_returns_the_same_ids() {
    let (_redis, broker) = redis_and_broker();
    let tasks = echoes(5);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let first = broker.claim(&queue(), "w1", 3, LEASE, "token-a").await.unwrap();
    // The reply was lost: asking again with the same token gives the same ids, nothing more.
    assert_eq!(broker.claim(&queue(), "w1", 3, LEASE, "token-a").await.unwrap(), first);
    assert_eq!(broker.leased(&queue(), "w1").await.unwrap().len(), 3);
    let next = broker.claim(&queue(), "w1", 3, LEASE, "token-b").await.unwrap();
    assert_eq!(next, Claim::Ids(tasks[3..].iter().map(|t| t.id.suffix().to_owned()).collect()));
    // A token that only starts like the last one is a new claim (nothing is left to take).
    assert_eq!(broker.claim(&queue(), "w1", 3, LEASE, "token").await.unwrap(), Claim::Ids(vec![]));
}

#[tokio::test]
async fn a_poison_record_is_dead_lettered_and_the_claim_goes_on() {
    let (_redis, broker) = redis_and_broker();
    let poison = push_poison(&broker).await;
    let good = NewTask::new(&queue(), "echo", &json!(2));
    let mut conn = broker.connection();
    broker.enqueue(&queue(), std::slice::from_ref(&good), 0, None).await.unwrap();
    let ids = claim_ids(&broker, "w1", 10).await;
    let started = broker.start(&queue(), "w1", &ids).await.unwrap();
    assert!(
        matches!(&started[0], Started::Skip { reason, .. } if reason == "poison"),
        "{started:?}"
    );
    assert!(matches!(&started[1], Started::Run(d) if d.id == good.id));
    let record = broker.get(&poison.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.error.unwrap().kind.as_str()), (TaskState::Failure, "Poison"));
    let dead: Vec<String> = conn.zrange(broker.keys().dead(&queue()), 0, -1).await.unwrap();
    assert_eq!(dead, [poison.id.suffix()]);
    let stats = broker.queue_stats().await.unwrap();
    assert_eq!(stats[0].failed, 1, "a poison record counts as failed");
}

#[tokio::test]
async fn a_task_stored_in_the_layout_before_the_spec_field_still_runs() {
    let (_redis, broker) = redis_and_broker();
    let old = NewTask::new(&queue(), "echo", &json!(1));
    let created = broker.clock().now_ms() - 5_000;
    let fields = [
        ("s", "PENDING".to_owned()),
        ("n", "echo".to_owned()),
        ("a", "[1]".to_owned()),
        ("c", created.to_string()),
        ("o", r#"{"max_retries":2}"#.to_owned()),
    ];
    let mut conn = broker.connection();
    conn.hset_multiple::<_, _, _, ()>(broker.keys().task(&old.id), &fields)
        .await
        .unwrap();
    conn.lpush::<_, _, ()>(broker.keys().pending(&queue()), old.id.suffix())
        .await
        .unwrap();

    let d = run_one(&broker, "w1").await;
    assert_eq!((d.id, d.name.as_str(), d.args.as_str()), (old.id.clone(), "echo", "[1]"));
    assert_eq!(d.options.max_retries, Some(2));
    assert!(
        d.waited.is_some_and(|w| w >= Duration::from_secs(5)),
        "waited since its creation: {:?}",
        d.waited
    );
    let record = broker.get(&old.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.task.as_str()), (TaskState::Started, "echo"));
}

#[tokio::test]
async fn the_traceparent_and_the_wait_reach_the_worker_at_start() {
    let (_redis, broker) = redis_and_broker();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut traced = NewTask::new(&queue(), "echo", &json!(1));
    traced.traceparent = celeriac::trace::TraceParent::parse(traceparent);
    let plain = NewTask::new(&queue(), "echo", &json!(2));
    broker.enqueue(&queue(), &[traced.clone(), plain.clone()], 0, None).await.unwrap();
    let record = broker.get(&traced.id).await.unwrap().unwrap();
    assert_eq!(record.trace_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(broker.get(&plain.id).await.unwrap().unwrap().trace_id, None);

    broker.clock().advance(Duration::from_millis(1500));
    let first = run_one(&broker, "w1").await;
    let second = run_one(&broker, "w1").await;
    assert_eq!(first.id, traced.id, "oldest first");
    assert_eq!(first.traceparent.as_ref().map(|t| t.to_string()).as_deref(), Some(traceparent));
    assert_eq!(second.traceparent, None);
    for d in [&first, &second] {
        let waited = d.waited.expect("known for a stored task");
        assert!(
            waited >= Duration::from_millis(1500) && waited < Duration::from_secs(60),
            "{waited:?}"
        );
    }
}

/// A task enqueued for later waited from its due time, not from its creation: its record
/// holds more than a state and a spec, so the start reads it in full, due time included.
#[tokio::test]
async fn a_task_enqueued_for_later_waited_from_its_due_time() {
    let (_redis, broker) = redis_and_broker();
    let mut task = NewTask::new(&queue(), "echo", &json!(1));
    task.due_ms = Some(broker.clock().now_ms() + 10_000);
    broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap();
    broker.clock().advance(Duration::from_secs(11));
    assert_eq!(broker.promote_due(&queue(), 10).await.unwrap(), 1);
    broker.clock().advance(Duration::from_secs(1));

    let d = run_one(&broker, "w1").await;
    assert_eq!(d.id, task.id);
    let waited = d.waited.expect("known for a stored task");
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "waited since its due time, 2 s ago, not its creation, 12 s ago: {waited:?}"
    );
}
