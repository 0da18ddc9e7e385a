//! Priorities within a queue: with a backlog, every higher-priority task is claimed before any
//! lower one and equal ones in arrival order; a task keeps its priority through a delay and a
//! crashed worker's redelivery; a queue never given priorities touches no priority key; a
//! worker blocked on an empty queue wakes for a task of any priority; depths count every level.

use std::time::Duration;

use celeriac::broker::{NewTask, QueueWaiter};
use redis::AsyncCommands;
use serde_json::json;

use super::{claim_ids, expire_and_recover, queue};
use crate::common::redis_and_broker;

fn task(priority: Option<u8>, n: usize) -> NewTask {
    let mut t = NewTask::new(&queue(), "echo", &json!(n));
    t.options.priority = priority;
    t
}

#[tokio::test]
async fn a_backlog_is_claimed_highest_priority_first_and_equal_ones_in_arrival_order() {
    let (_redis, broker) = redis_and_broker();
    // 300 tasks, priorities mixed (none, 0 to 9), in batches and one by one.
    let levels = [
        None,
        Some(3),
        Some(9),
        Some(0),
        Some(5),
        Some(1),
        Some(9),
        Some(7),
        Some(2),
        Some(4),
        Some(6),
        Some(8),
    ];
    let tasks: Vec<NewTask> = (0..300).map(|n| task(levels[n % levels.len()], n)).collect();
    for chunk in tasks[..200].chunks(25) {
        broker.enqueue(&queue(), chunk, 0, None).await.unwrap();
    }
    for t in &tasks[200..] {
        broker.enqueue(&queue(), std::slice::from_ref(t), 0, None).await.unwrap();
    }
    let mut claimed = Vec::new();
    loop {
        let ids = claim_ids(&broker, "w1", 7).await;
        if ids.is_empty() {
            break;
        }
        claimed.extend(ids);
    }
    let mut expected: Vec<&NewTask> = tasks.iter().collect();
    // stable: equal priorities keep their arrival order
    expected.sort_by_key(|t| std::cmp::Reverse(t.options.priority.unwrap_or(0)));
    let expected: Vec<String> = expected.iter().map(|t| t.id.suffix().to_owned()).collect();
    assert_eq!(claimed, expected);
    let bell: bool = broker.connection().exists(broker.keys().priority_bell(&queue())).await.unwrap();
    assert!(!bell, "the claim that emptied the levels silenced the bell");
}

#[tokio::test]
async fn a_queue_never_given_priorities_touches_no_priority_key() {
    let (_redis, broker) = redis_and_broker();
    let plain: Vec<NewTask> = (0..5).map(|n| task(None, n)).collect();
    broker.enqueue(&queue(), &plain, 0, None).await.unwrap();
    broker.enqueue(&queue(), &[task(Some(0), 5)], 0, None).await.unwrap();
    assert_eq!(claim_ids(&broker, "w1", 10).await.len(), 6);
    let mut conn = broker.connection();
    let mut keys = vec![broker.keys().priority_marker(&queue()), broker.keys().priority_bell(&queue())];
    keys.extend(broker.keys().pending_levels(&queue()));
    let present: u64 = conn.exists(&keys).await.unwrap();
    assert_eq!(present, 0);
    assert!(!broker.uses_priorities(&queue()).await.unwrap());
}

#[tokio::test]
async fn a_delayed_or_redelivered_task_keeps_its_priority() {
    let (_redis, broker) = redis_and_broker();
    let mut delayed = task(Some(8), 0);
    delayed.due_ms = Some(broker.clock().now_ms() + 50);
    broker.enqueue(&queue(), std::slice::from_ref(&delayed), 0, None).await.unwrap();
    let crashed = task(Some(6), 1);
    broker.enqueue(&queue(), std::slice::from_ref(&crashed), 0, None).await.unwrap();
    assert_eq!(claim_ids(&broker, "dead", 1).await, vec![crashed.id.suffix().to_owned()]);
    let low: Vec<NewTask> = (2..6).map(|n| task(Some(2), n)).collect();
    broker.enqueue(&queue(), &low, 0, None).await.unwrap();
    let plain: Vec<NewTask> = (6..9).map(|n| task(None, n)).collect();
    broker.enqueue(&queue(), &plain, 0, None).await.unwrap();
    assert_eq!(expire_and_recover(&broker, "dead").await, Some(1));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while broker.promote_due(&queue(), 100).await.unwrap() == 0 {
        assert!(std::time::Instant::now() < deadline, "the delayed task became due");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let claimed = claim_ids(&broker, "w1", 100).await;
    let mut expected = vec![delayed.id.suffix().to_owned(), crashed.id.suffix().to_owned()];
    expected.extend(low.iter().chain(&plain).map(|t| t.id.suffix().to_owned()));
    assert_eq!(claimed, expected);
}

#[tokio::test]
async fn a_waiting_worker_wakes_for_a_task_of_any_priority_and_depths_count_every_level() {
    let (_redis, broker) = redis_and_broker();
    // The queue has had priorities: its waiter watches the pending list and the bell.
    broker.enqueue(&queue(), &[task(Some(4), 0)], 0, None).await.unwrap();
    assert_eq!(claim_ids(&broker, "w1", 10).await.len(), 1);
    for priority in [Some(9), None] {
        let mut waiter = QueueWaiter::new(&broker, &queue());
        let producer = broker.clone();
        let t = task(priority, 1);
        let id = t.id.suffix().to_owned();
        let push = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            producer.enqueue(&queue(), &[t], 0, None).await.unwrap();
        });
        let began = std::time::Instant::now();
        assert!(waiter.wait_for_work(Duration::from_secs(10)).await.unwrap());
        assert!(began.elapsed() < Duration::from_secs(5), "woken by the enqueue, not the timeout");
        push.await.unwrap();
        let overview = broker.queue_overview(&queue()).await.unwrap();
        assert_eq!(overview.pending, 1, "{priority:?}");
        assert_eq!(claim_ids(&broker, "w1", 10).await, vec![id]);
    }
}

#[tokio::test]
async fn a_priority_above_nine_is_refused_naming_the_field() {
    let options = celeriac::TaskOptions {
        priority: Some(10),
        ..Default::default()
    };
    assert_eq!(options.validate().unwrap_err().0, "priority");
}
