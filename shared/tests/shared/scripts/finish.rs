//! Finish: an outcome stored with its TTL, a failure dead-lettered, and fencing (a run that lost
//! its lease cannot overwrite the newer run, even on the same worker).

use celeriac::broker::{Ack, EnqueueOutcome, NewTask, Outcome, Verdict};
use celeriac::{TaskError, TaskState};
use redis::AsyncCommands;
use serde_json::json;

use super::{enqueue_and_start, expire_and_recover, finish_run, queue, run_one, state};
use crate::common::redis_and_broker;

#[tokio::test]
async fn a_task_goes_from_pending_to_started_to_success_with_a_ttl() {
    let (_redis, broker) = redis_and_broker();
    let task = NewTask::new(&queue(), "add", &json!([1, 2]));
    assert_eq!(
        broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap(),
        EnqueueOutcome::Stored
    );
    assert_eq!(state(&broker, &task.id).await, TaskState::Pending);

    let d = run_one(&broker, "w1").await;
    assert_eq!((d.name.as_str(), d.args.as_str(), d.delivery, d.retries), ("add", "[1,2]", 1, 0));
    let record = broker.get(&task.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.worker.as_deref()), (TaskState::Started, Some("w1")));

    let stored = broker
        .finish(
            &queue(),
            "w1",
            &[Outcome {
                id: task.id.clone(),
                delivery: 1,
                verdict: Verdict::Success("3".into()),
            }],
        )
        .await
        .unwrap();
    assert_eq!(stored, [Ack::Stored]);
    let record = broker.get(&task.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.result), (TaskState::Success, Some(json!(3))));
    let ttl: i64 = broker.connection().ttl(broker.keys().task(&task.id)).await.unwrap();
    assert!(ttl > 0 && ttl <= 3600, "ttl {ttl}");
    assert!(broker.leased(&queue(), "w1").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failure_is_dead_lettered() {
    let (_redis, broker) = redis_and_broker();
    let (task, d) = enqueue_and_start(&broker, "fail", &json!({})).await;
    finish_run(&broker, "w1", &d, Verdict::Failure(TaskError::permanent("no").with_kind("Fail"))).await;
    let dead: Vec<String> = broker.connection().zrange(broker.keys().dead(&queue()), 0, -1).await.unwrap();
    assert_eq!(dead, [task.id.suffix()]);
    assert_eq!(state(&broker, &task.id).await, TaskState::Failure);
}

#[tokio::test]
async fn a_run_that_lost_its_lease_cannot_overwrite_the_newer_run() {
    let (_redis, broker) = redis_and_broker();
    let task = NewTask::new(&queue(), "echo", &json!(1));
    broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap();
    let old = run_one(&broker, "old").await;
    // The old worker's lease is recovered (as after a crash), and another worker runs it.
    assert_eq!(expire_and_recover(&broker, "old").await, Some(1));
    assert_eq!(state(&broker, &task.id).await, TaskState::Pending);
    let new = run_one(&broker, "new").await;
    assert_eq!(new.delivery, 2);
    assert_eq!(new.retries, 0, "a crash redelivery does not use the retry budget");

    let late = Verdict::Failure(TaskError::permanent("late"));
    assert_eq!(finish_run(&broker, "old", &old, late).await, [Ack::Refused]);
    let stale_progress = celeriac::Progress {
        current: 1,
        total: 2,
        message: None,
    };
    assert!(
        !broker
            .report_progress(&task.id, "old", old.delivery, &stale_progress)
            .await
            .unwrap()
    );
    assert_eq!(finish_run(&broker, "new", &new, Verdict::Success("1".into())).await, [Ack::Stored]);
    assert_eq!(state(&broker, &task.id).await, TaskState::Success);
}

#[tokio::test]
async fn a_worker_that_claims_its_lost_task_again_fences_its_own_older_run() {
    let (_redis, broker) = redis_and_broker();
    let (task, old) = enqueue_and_start(&broker, "echo", &json!(1)).await;
    // w1 stalls past its lease: the reaper gives the task back, and w1 itself takes it again.
    assert_eq!(expire_and_recover(&broker, "w1").await, Some(1));
    let new = run_one(&broker, "w1").await;
    assert_eq!((new.id.clone(), new.delivery), (task.id.clone(), 2));
    // The id is leased to w1 again, but for delivery 2: the first run is refused.
    let late = Verdict::Failure(TaskError::permanent("late"));
    assert_eq!(finish_run(&broker, "w1", &old, late).await, [Ack::Refused]);
    let progress = celeriac::Progress {
        current: 1,
        total: 2,
        message: None,
    };
    assert!(!broker.report_progress(&task.id, "w1", old.delivery, &progress).await.unwrap());
    assert!(broker.report_progress(&task.id, "w1", new.delivery, &progress).await.unwrap());
    assert_eq!(finish_run(&broker, "w1", &new, Verdict::Success("1".into())).await, [Ack::Stored]);
    assert_eq!(state(&broker, &task.id).await, TaskState::Success);
}
