//! Retry and revoke: retries wait in the scheduled set until due; a revoke wins over what a
//! running task reports, and every way of ending revoked counts once.

use std::time::Duration;

use celeriac::broker::{Ack, NewTask, Outcome, Verdict};
use celeriac::{Broker, TaskError, TaskState};
use redis::AsyncCommands;
use serde_json::json;

use super::{claim_ids, echoes, enqueue_and_start, finish_run, logged_states, queue, run_one, state};
use crate::common::redis_and_broker;

#[tokio::test]
async fn retries_wait_in_the_scheduled_set_and_are_promoted_when_due() {
    let (_redis, broker) = redis_and_broker();
    let (task, d) = enqueue_and_start(&broker, "fail", &json!({})).await;
    let due = broker.clock().now_ms() + 60_000;
    let retry = Verdict::Retry {
        error: TaskError::retryable("flaky"),
        due_ms: due,
    };
    assert_eq!(finish_run(&broker, "w1", &d, retry).await, [Ack::Stored]);
    let record = broker.get(&task.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.attempt), (TaskState::Retry, 2));
    assert_eq!(record.error.unwrap().message, "flaky");
    assert_eq!(record.eta.unwrap().timestamp_millis(), due);

    assert_eq!(broker.promote_due(&queue(), 100).await.unwrap(), 0, "not due yet");
    broker.clock().advance(Duration::from_secs(61));
    assert_eq!(broker.promote_due(&queue(), 100).await.unwrap(), 1);
    assert_eq!(broker.promote_due(&queue(), 100).await.unwrap(), 0, "moved once only");
    let second = run_one(&broker, "w1").await;
    assert_eq!((second.retries, second.delivery), (1, 2));
}

#[tokio::test]
async fn a_run_revoked_while_it_ran_ends_revoked_whatever_it_reports() {
    let (_redis, broker) = redis_and_broker();
    let (task, d) = enqueue_and_start(&broker, "echo", &json!(1)).await;
    let (other, other_run) = enqueue_and_start(&broker, "echo", &json!(2)).await;
    broker.revoke(&task.id, false, "not wanted").await.unwrap();
    let outcomes = [d, other_run].map(|d| Outcome {
        id: d.id,
        delivery: d.delivery,
        verdict: Verdict::Success("1".into()),
    });
    assert_eq!(broker.finish(&queue(), "w1", &outcomes).await.unwrap(), [Ack::Stored, Ack::Stored]);
    let record = broker.get(&task.id).await.unwrap().unwrap();
    assert_eq!(record.state, TaskState::Revoked);
    assert_eq!(record.error.map(|e| e.message), Some("not wanted".into()));
    assert_eq!(
        logged_states(&broker, &task.id).await,
        (vec![Some(TaskState::Started), Some(TaskState::Revoked)], true)
    );
    assert_eq!(state(&broker, &other.id).await, TaskState::Success, "only the revoked one");
    let revoking: bool = broker.connection().exists(broker.keys().revoking(&queue())).await.unwrap();
    assert!(!revoking, "settled, it leaves the revoking set");
}

/// The queue's `revoked` counter.
async fn revoked_count(broker: &Broker) -> u64 {
    let stats = broker.queue_stats().await.unwrap();
    stats.iter().find(|s| s.queue == "default").map_or(0, |s| s.revoked)
}

#[tokio::test]
async fn every_way_of_ending_revoked_counts_in_the_queues_counter() {
    let (_redis, broker) = redis_and_broker();
    let now = broker.clock().now_ms();

    // Revoked while queued.
    let queued = NewTask::new(&queue(), "echo", &json!(1));
    broker.enqueue(&queue(), std::slice::from_ref(&queued), 0, None).await.unwrap();
    broker.revoke(&queued.id, false, "not needed").await.unwrap();
    assert_eq!(revoked_count(&broker).await, 1, "revoked while queued");

    // Purged.
    let purged = echoes(2);
    broker.enqueue(&queue(), &purged, 0, None).await.unwrap();
    assert_eq!(broker.purge(&queue()).await.unwrap(), 2);
    assert_eq!(revoked_count(&broker).await, 3, "purged");

    // Expired while scheduled (at promotion), and expired while pending (at start).
    let mut scheduled = NewTask::new(&queue(), "echo", &json!(3));
    (scheduled.due_ms, scheduled.expires_ms) = (Some(now + 60_000), Some(now + 30_000));
    let mut pending = NewTask::new(&queue(), "echo", &json!(4));
    pending.expires_ms = Some(now + 1_000);
    broker
        .enqueue(&queue(), &[scheduled.clone(), pending.clone()], 0, None)
        .await
        .unwrap();
    broker.clock().advance(Duration::from_secs(61));
    let ids = claim_ids(&broker, "w1", 10).await;
    broker.start(&queue(), "w1", &ids).await.unwrap();
    assert_eq!(revoked_count(&broker).await, 4, "expired at start");
    assert_eq!(broker.promote_due(&queue(), 10).await.unwrap(), 0);
    assert_eq!(revoked_count(&broker).await, 5, "expired at promotion");

    // Revoked while running, and its worker stopped before storing an outcome.
    let running = NewTask::new(&queue(), "sleep", &json!({"ms": 10_000}));
    broker.enqueue(&queue(), std::slice::from_ref(&running), 0, None).await.unwrap();
    let d = run_one(&broker, "w2").await;
    broker.revoke(&running.id, true, "stop it").await.unwrap();
    broker.requeue_own(&queue(), "w2", &[d.id.suffix().to_owned()]).await.unwrap();
    assert_eq!(state(&broker, &running.id).await, TaskState::Revoked);
    assert_eq!(revoked_count(&broker).await, 6, "revoked while running, then given back");
    let revoking: bool = broker.connection().exists(broker.keys().revoking(&queue())).await.unwrap();
    assert!(!revoking, "given back revoked, it leaves the revoking set");

    for id in [&queued.id, &purged[0].id, &scheduled.id, &pending.id] {
        assert_eq!(state(&broker, id).await, TaskState::Revoked);
    }
}
