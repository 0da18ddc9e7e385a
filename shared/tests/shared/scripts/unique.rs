//! Unique tasks in the enqueue script: a second call with the same key stores nothing and
//! names the first task; the lock is released only by its own task, and only at the moment its
//! `unique_until` says; a workflow-free batch of one is the only kind locked.

use celeriac::broker::{EnqueueOutcome, NewTask, UniqueLock, UniqueRelease};
use celeriac::{Broker, TaskId, TaskOptions};
use serde_json::json;

use super::queue;
use crate::common::redis_and_broker;

fn unique(args: serde_json::Value, until: Option<&str>) -> NewTask {
    let mut t = NewTask::new(&queue(), "echo", &args);
    t.options.unique_for = Some(60.0);
    t.options.unique_until = until.map(str::to_owned);
    t
}

/// What the worker does at `moment` (`started` or `finished`) for the task `id` of `echo`
/// with `args`: releases its lock when that is its moment. Whether a lock was released.
async fn release_at(broker: &Broker, id: TaskId, args: &str, options: &TaskOptions, moment: &str) -> bool {
    let Some(lock) = UniqueLock::of("echo", args, options) else {
        return false;
    };
    let due = match lock.release {
        UniqueRelease::Started => "started",
        UniqueRelease::Finished => "finished",
    };
    due == moment && broker.release_unique(&id, &lock).await.unwrap()
}

#[tokio::test]
async fn a_duplicate_names_the_first_task_until_its_lock_is_released_at_the_right_moment() {
    let (_redis, broker) = redis_and_broker();
    let first = unique(json!([1]), None);
    assert_eq!(
        broker.enqueue(&queue(), std::slice::from_ref(&first), 0, None).await.unwrap(),
        EnqueueOutcome::Stored
    );
    let second = unique(json!([1]), None);
    assert_eq!(
        broker.enqueue(&queue(), std::slice::from_ref(&second), 0, None).await.unwrap(),
        EnqueueOutcome::Unique { task_id: first.id.clone() }
    );
    assert!(broker.get(&second.id).await.unwrap().is_none(), "nothing stored for the duplicate");
    let other_args = unique(json!([2]), None);
    assert_eq!(
        broker.enqueue(&queue(), &[other_args], 0, None).await.unwrap(),
        EnqueueOutcome::Stored
    );

    // Only at its moment (finished, the default), and only by its own task.
    let release = |id, moment| release_at(&broker, id, "[1]", &first.options, moment);
    assert!(!release(first.id.clone(), "started").await);
    assert!(!release(second.id.clone(), "finished").await, "another task's lock stays");
    assert!(release(first.id.clone(), "finished").await);
    let third = unique(json!([1]), None);
    assert_eq!(
        broker.enqueue(&queue(), std::slice::from_ref(&third), 0, None).await.unwrap(),
        EnqueueOutcome::Stored
    );

    // A throttle's lock is never released early.
    let throttle = unique(json!([3]), Some("period"));
    broker.enqueue(&queue(), std::slice::from_ref(&throttle), 0, None).await.unwrap();
    for moment in ["started", "finished"] {
        assert!(!release_at(&broker, throttle.id.clone(), "[3]", &throttle.options, moment).await);
    }
}
