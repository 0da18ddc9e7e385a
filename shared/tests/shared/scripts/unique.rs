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

#[tokio::test]
async fn a_lock_its_task_no_longer_needs_is_taken_by_the_next_call() {
    let (_redis, broker) = redis_and_broker();
    // Revoked before it ran: the next call is a new task, not a duplicate of a revoked one.
    let revoked = unique(json!(["revoked"]), None);
    broker.enqueue(&queue(), std::slice::from_ref(&revoked), 0, None).await.unwrap();
    broker.revoke(&revoked.id, false, "not needed").await.unwrap();
    let after_revoke = unique(json!(["revoked"]), None);
    assert_eq!(
        broker
            .enqueue(&queue(), std::slice::from_ref(&after_revoke), 0, None)
            .await
            .unwrap(),
        EnqueueOutcome::Stored
    );

    // Finished, and its worker died before releasing the lock: the next call takes it.
    let finished = unique(json!(["finished"]), None);
    broker.enqueue(&queue(), std::slice::from_ref(&finished), 0, None).await.unwrap();
    let ids = super::claim_ids(&broker, "w1", 10).await;
    let started = broker.start(&queue(), "w1", &ids).await.unwrap();
    for run in started {
        if let celeriac::broker::Started::Run(d) = run {
            super::finish_run(&broker, "w1", &d, celeriac::broker::Verdict::Success("null".into())).await;
        }
    }
    assert_eq!(super::state(&broker, &finished.id).await, celeriac::TaskState::Success);
    let after_finish = unique(json!(["finished"]), None);
    assert_eq!(
        broker
            .enqueue(&queue(), std::slice::from_ref(&after_finish), 0, None)
            .await
            .unwrap(),
        EnqueueOutcome::Stored
    );

    // A live holder keeps its lock, and a throttle's finished task keeps it for its period.
    let waiting = unique(json!(["finished"]), None);
    assert_eq!(
        broker.enqueue(&queue(), std::slice::from_ref(&waiting), 0, None).await.unwrap(),
        EnqueueOutcome::Unique {
            task_id: after_finish.id.clone()
        }
    );
    let throttle = unique(json!(["throttle"]), Some("period"));
    broker.enqueue(&queue(), std::slice::from_ref(&throttle), 0, None).await.unwrap();
    let ids = super::claim_ids(&broker, "w2", 10).await;
    for run in broker.start(&queue(), "w2", &ids).await.unwrap() {
        if let celeriac::broker::Started::Run(d) = run {
            super::finish_run(&broker, "w2", &d, celeriac::broker::Verdict::Success("null".into())).await;
        }
    }
    let again = unique(json!(["throttle"]), Some("period"));
    assert_eq!(
        broker.enqueue(&queue(), std::slice::from_ref(&again), 0, None).await.unwrap(),
        EnqueueOutcome::Unique {
            task_id: throttle.id.clone()
        }
    );
}
