//! Requeue and reap: a graceful requeue puts a task first in line without a retry; the reaper
//! gives back an expired lease's tasks (an earlier build's too) and leaves a live one alone.

use celeriac::TaskState;
use celeriac::broker::NewTask;
use redis::AsyncCommands;
use serde_json::json;

use super::{enqueue_and_start, expire_and_recover, logged_states, queue, run_one, state};
use crate::common::redis_and_broker;

#[tokio::test]
async fn a_graceful_requeue_puts_the_task_first_in_line_without_using_a_retry() {
    let (_redis, broker) = redis_and_broker();
    let a = NewTask::new(&queue(), "echo", &json!("a"));
    let b = NewTask::new(&queue(), "echo", &json!("b"));
    broker.enqueue(&queue(), &[a.clone(), b.clone()], 0, None).await.unwrap();
    let d = run_one(&broker, "w1").await;
    assert_eq!(d.id, a.id);
    assert_eq!(broker.requeue_own(&queue(), "w1", &[a.id.suffix().to_owned()]).await.unwrap(), 1);
    let again = run_one(&broker, "w2").await;
    assert_eq!((again.id.clone(), again.delivery, again.retries), (a.id.clone(), 2, 0));
    use TaskState::*;
    assert_eq!(
        logged_states(&broker, &a.id).await,
        (vec![Some(Started), Some(Pending), Some(Started)], true),
        "the first start is logged before the requeue"
    );
}

#[tokio::test]
async fn recovery_leaves_a_live_lease_alone() {
    let (_redis, broker) = redis_and_broker();
    broker
        .enqueue(&queue(), &[NewTask::new(&queue(), "echo", &json!(1))], 0, None)
        .await
        .unwrap();
    run_one(&broker, "alive").await;
    assert_eq!(broker.expired_leases(&queue()).await.unwrap(), Vec::<String>::new());
    assert_eq!(broker.recover_expired(&queue(), "alive").await.unwrap(), None);
    assert_eq!(broker.leased(&queue(), "alive").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_crashed_worker_of_an_earlier_build_gets_its_tasks_back() {
    let (_redis, broker) = redis_and_broker();
    let (task, _) = enqueue_and_start(&broker, "echo", &json!(1)).await;
    // As an earlier build left it: the id in a plain set under the old key, the task STARTED.
    let mut conn = broker.connection();
    let suffix = task.id.suffix().to_owned();
    conn.del::<_, ()>(broker.keys().inflight(&queue(), "w1")).await.unwrap();
    conn.sadd::<_, _, ()>(broker.keys().legacy_inflight(&queue(), "old"), &suffix)
        .await
        .unwrap();
    assert_eq!(expire_and_recover(&broker, "old").await, Some(1));
    assert_eq!(state(&broker, &task.id).await, TaskState::Pending);
    let exists: bool = conn.exists(broker.keys().legacy_inflight(&queue(), "old")).await.unwrap();
    assert!(!exists);
    assert_eq!(run_one(&broker, "w2").await.delivery, 2);
}
