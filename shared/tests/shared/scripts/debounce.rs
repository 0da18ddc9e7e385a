//! Debounced tasks: a burst of calls of one key stores one task, which gets each call's
//! arguments and is pushed back to `debounce` after the last call; once it has been promoted
//! the next call starts a new burst; a burst's key is its own (another key, another task); a
//! thousand concurrent calls still make one task.

use std::time::Duration;

use celeriac::broker::{EnqueueOutcome, NewTask};
use celeriac::{Broker, TaskState};
use serde_json::json;

use super::{claim_ids, queue};
use crate::common::redis_and_broker;

fn debounced(args: serde_json::Value, key: Option<&str>) -> NewTask {
    let mut t = NewTask::new(&queue(), "echo", &args);
    t.options.debounce = Some(2.0);
    t.options.debounce_key = key.map(str::to_owned);
    t
}

async fn call(broker: &Broker, task: &NewTask) -> EnqueueOutcome {
    broker.enqueue(&queue(), std::slice::from_ref(task), 0, None).await.unwrap()
}

#[tokio::test]
async fn a_burst_runs_one_task_with_the_last_arguments_after_the_burst() {
    let (_redis, broker) = redis_and_broker();
    let first = debounced(json!({"n": 0}), Some("user-7"));
    assert_eq!(call(&broker, &first).await, EnqueueOutcome::Stored);
    for n in 1..=5 {
        broker.clock().advance(Duration::from_secs(1));
        let again = debounced(json!({"n": n}), Some("user-7"));
        assert_eq!(
            call(&broker, &again).await,
            EnqueueOutcome::Debounced { task_id: first.id.clone() },
            "call {n} merges into the waiting task"
        );
        assert!(broker.get(&again.id).await.unwrap().is_none(), "call {n} stored nothing");
    }
    let other_key = debounced(json!({"n": 99}), Some("user-8"));
    assert_eq!(
        call(&broker, &other_key).await,
        EnqueueOutcome::Stored,
        "another key, another burst"
    );

    // Each call pushed the start back: 2 s after the last call, not after the first.
    let record = broker.get(&first.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.args.clone()), (TaskState::Scheduled, json!({"n": 5})));
    broker.clock().advance(Duration::from_millis(1_500));
    assert_eq!(
        broker.promote_due(&queue(), 10).await.unwrap(),
        0,
        "still within the delay of the last call"
    );
    broker.clock().advance(Duration::from_secs(1));
    assert_eq!(
        broker.promote_due(&queue(), 10).await.unwrap(),
        2,
        "the burst's task and the other key's"
    );
    let mut pending = claim_ids(&broker, "w1", 10).await;
    pending.sort();
    let mut expected = vec![first.id.suffix().to_owned(), other_key.id.suffix().to_owned()];
    expected.sort();
    assert_eq!(pending, expected, "one task per burst");

    // Once its task left the scheduled set, a call starts a new burst.
    let later = debounced(json!({"n": 6}), Some("user-7"));
    assert_eq!(call(&broker, &later).await, EnqueueOutcome::Stored);
    assert_eq!(broker.get(&later.id).await.unwrap().unwrap().state, TaskState::Scheduled);
}

#[tokio::test]
async fn a_merged_call_gives_the_waiting_task_its_own_creation_time() {
    let (_redis, broker) = redis_and_broker();
    let first = debounced(json!({"n": 0}), Some("k"));
    assert_eq!(call(&broker, &first).await, EnqueueOutcome::Stored);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = broker.clock().now_ms();
    let again = debounced(json!({"n": 1}), Some("k"));
    assert_eq!(call(&broker, &again).await, EnqueueOutcome::Debounced { task_id: first.id.clone() });
    // The merged spec holds the last call's time: the time the waiting task's id holds is the
    // first call's.
    let record = broker.get(&first.id).await.unwrap().unwrap();
    let created = record.created_at.unwrap().timestamp_millis();
    assert!(created >= before, "{created} >= {before}");
}

#[tokio::test]
async fn a_thousand_concurrent_calls_make_one_task_with_one_of_their_arguments() {
    let (_redis, broker) = redis_and_broker();
    let calls = (0..1000).map(|n| {
        let broker = broker.clone();
        async move { call(&broker, &debounced(json!({"n": n}), None)).await }
    });
    let outcomes = futures::future::join_all(calls).await;
    let stored = outcomes.iter().filter(|o| **o == EnqueueOutcome::Stored).count();
    assert_eq!(stored, 1, "one call stored the task, the others merged into it");
    let ids: std::collections::HashSet<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            EnqueueOutcome::Debounced { task_id } => Some(task_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 1, "every merge names the same task");
    let stats = broker.queue_stats().await.unwrap();
    let default = stats.iter().find(|s| s.queue == "default").unwrap();
    assert_eq!(default.scheduled, 1, "{default:?}");
}
