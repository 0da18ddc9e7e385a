//! The audit: every task is found in exactly one place, and one out of place is named.

use redis::AsyncCommands;

use super::{echoes, queue, run_one};
use crate::common::redis_and_broker;

#[tokio::test]
async fn the_audit_sees_every_task_in_its_place_and_names_one_out_of_place() {
    let (_redis, broker) = redis_and_broker();
    let tasks = echoes(3);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let running = run_one(&broker, "w1").await;
    let report = broker.audit().await.unwrap();
    assert_eq!((report.tasks, report.problems.len()), (3, 0), "{:?}", report.problems);
    // A pending task taken off its list by hand is in no place.
    let lost = tasks.iter().find(|t| t.id != running.id).expect("a pending task");
    let _: i64 = broker
        .connection()
        .lrem(broker.keys().pending(&queue()), 0, lost.id.suffix())
        .await
        .unwrap();
    let report = broker.audit().await.unwrap();
    assert_eq!(report.tasks, 3);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains(lost.id.suffix()), "{:?}", report.problems);
}
