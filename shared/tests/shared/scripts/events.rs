//! The event log every transition writes: in order with consecutive ids, a hand retry keeping
//! its ending, a start asked again, the earlier events kept by the start's rare paths (which
//! read the log themselves), and a flood of progress bounded to a few kilobytes.

use celeriac::broker::{Ack, NewTask, Verdict};
use celeriac::{TaskError, TaskState};
use redis::AsyncCommands;
use serde_json::json;

use super::{claim_ids, enqueue_and_start, finish_run, logged_states, queue, run_one};
use crate::common::redis_and_broker;

#[tokio::test]
async fn every_transition_is_logged_in_order_with_consecutive_ids() {
    let (_redis, broker) = redis_and_broker();
    let (task, d) = enqueue_and_start(&broker, "fail", &json!({})).await;
    let progress = celeriac::Progress {
        current: 1,
        total: 2,
        message: Some("half way".into()),
    };
    assert!(broker.report_progress(&task.id, "w1", d.delivery, &progress).await.unwrap());
    let retry = Verdict::Retry {
        error: TaskError::retryable("flaky"),
        due_ms: broker.clock().now_ms(),
    };
    finish_run(&broker, "w1", &d, retry).await;
    broker.promote_due(&queue(), 10).await.unwrap();
    let d = run_one(&broker, "w1").await;
    finish_run(&broker, "w1", &d, Verdict::Success("1".into())).await;

    let (states, consecutive) = logged_states(&broker, &task.id).await;
    use TaskState::*;
    assert_eq!(
        states,
        [Some(Started), None, Some(Retry), Some(Pending), Some(Started), Some(Success)]
    );
    assert!(consecutive);
    let events = broker.task_events(&task.id, 0).await.unwrap();
    assert_eq!(events[1].progress, Some(progress));
    assert_eq!(last_event_id(&broker, &task.id).await, events[5].id);
    assert_eq!(
        broker.task_events(&task.id, events[3].id).await.unwrap(),
        events[4..],
        "resume after an id"
    );
}

#[tokio::test]
async fn a_failure_retried_by_hand_keeps_its_ending_in_the_log() {
    let (_redis, broker) = redis_and_broker();
    let (task, d) = enqueue_and_start(&broker, "fail", &json!({})).await;
    finish_run(&broker, "w1", &d, Verdict::Failure(TaskError::permanent("no"))).await;
    let ended = broker.get(&task.id).await.unwrap().unwrap().finished_at;
    assert!(ended.is_some());
    assert_eq!(last_event_id(&broker, &task.id).await, 2);
    broker.retry(&task.id).await.unwrap();
    let d = run_one(&broker, "w1").await;
    finish_run(&broker, "w1", &d, Verdict::Success("1".into())).await;
    let (states, consecutive) = logged_states(&broker, &task.id).await;
    use TaskState::*;
    assert_eq!(states, [Some(Started), Some(Failure), Some(Pending), Some(Started), Some(Success)]);
    assert!(consecutive);
    let events = broker.task_events(&task.id, 0).await.unwrap();
    assert_eq!(
        Some(events[1].at),
        ended.map(|t| t.timestamp_millis()),
        "the failure keeps its time"
    );
    assert_eq!(last_event_id(&broker, &task.id).await, 5);
}

#[tokio::test]
async fn a_start_asked_again_logs_both_starts() {
    let (_redis, broker) = redis_and_broker();
    let task = NewTask::new(&queue(), "echo", &json!(1));
    broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap();
    let ids = claim_ids(&broker, "w1", 1).await;
    // The first start's reply was lost: the worker asks again, which is a newer delivery.
    broker.start(&queue(), "w1", &ids).await.unwrap();
    let Some(celeriac::broker::Started::Run(d)) = broker.start(&queue(), "w1", &ids).await.unwrap().pop() else {
        panic!("the second start runs it")
    };
    assert_eq!(d.delivery, 2);
    assert_eq!(finish_run(&broker, "w1", &d, Verdict::Success("1".into())).await, [Ack::Stored]);
    use TaskState::*;
    assert_eq!(
        logged_states(&broker, &task.id).await,
        (vec![Some(Started), Some(Started), Some(Success)], true)
    );
}

/// Enqueues a task (with `expires_ms`, if any) and runs it once to a retry, which is promoted
/// back to pending: a task whose log holds events (STARTED, RETRY, PENDING) before its next
/// start.
async fn retried_once(broker: &celeriac::Broker, expires_ms: Option<i64>) -> NewTask {
    let mut task = NewTask::new(&queue(), "echo", &json!(1));
    task.expires_ms = expires_ms;
    broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap();
    let d = run_one(broker, "w1").await;
    let retry = Verdict::Retry {
        error: TaskError::retryable("flaky"),
        due_ms: broker.clock().now_ms(),
    };
    finish_run(broker, "w1", &d, retry).await;
    broker.promote_due(&queue(), 10).await.unwrap();
    task
}

#[tokio::test]
async fn a_start_asked_again_after_a_retry_keeps_the_earlier_events() {
    let (_redis, broker) = redis_and_broker();
    let task = retried_once(&broker, None).await;
    let ids = claim_ids(&broker, "w1", 1).await;
    broker.start(&queue(), "w1", &ids).await.unwrap();
    // The second start folds the first one's STARTED, still out of the log, into the log.
    let Some(celeriac::broker::Started::Run(d)) = broker.start(&queue(), "w1", &ids).await.unwrap().pop() else {
        panic!("the start asked again runs it")
    };
    finish_run(&broker, "w1", &d, Verdict::Success("1".into())).await;
    use TaskState::*;
    assert_eq!(
        logged_states(&broker, &task.id).await,
        (
            vec![
                Some(Started),
                Some(Retry),
                Some(Pending),
                Some(Started),
                Some(Started),
                Some(Success)
            ],
            true
        )
    );
}

#[tokio::test]
async fn a_task_settled_at_its_next_start_keeps_the_earlier_events() {
    let (_redis, broker) = redis_and_broker();
    let task = retried_once(&broker, Some(broker.clock().now_ms() + 1_000)).await;
    broker.clock().advance(std::time::Duration::from_secs(2));
    let ids = claim_ids(&broker, "w1", 1).await;
    match broker.start(&queue(), "w1", &ids).await.unwrap().as_slice() {
        [celeriac::broker::Started::Skip { reason, .. }] => assert_eq!(reason, "expired"),
        other => panic!("{other:?}"),
    }
    use TaskState::*;
    assert_eq!(
        logged_states(&broker, &task.id).await,
        (vec![Some(Started), Some(Retry), Some(Pending), Some(Revoked)], true)
    );
}

#[tokio::test]
async fn a_flood_of_progress_keeps_the_newest_events_within_a_few_kilobytes() {
    let (_redis, broker) = redis_and_broker();
    let (task, d) = enqueue_and_start(&broker, "report", &json!({})).await;
    for current in 1..=300 {
        let progress = celeriac::Progress {
            current,
            total: 300,
            message: Some("working on it".into()),
        };
        broker.report_progress(&task.id, "w1", d.delivery, &progress).await.unwrap();
    }
    finish_run(&broker, "w1", &d, Verdict::Success("1".into())).await;

    let history: String = broker.connection().hget(broker.keys().task(&task.id), "h").await.unwrap();
    assert!(history.len() <= 4096, "{} bytes", history.len());
    let events = broker.task_events(&task.id, 0).await.unwrap();
    assert!(events.len() > 20 && events.len() < 300, "{} events kept", events.len());
    assert!(events.windows(2).all(|w| w[1].id == w[0].id + 1), "a gapless tail");
    let last = events.last().unwrap();
    assert_eq!((last.id, last.state), (302, Some(TaskState::Success)));
    assert_eq!(events[events.len() - 2].progress.as_ref().map(|p| p.current), Some(300));
}

/// The id of the task's latest event, as the event stream starts from it.
async fn last_event_id(broker: &celeriac::Broker, id: &celeriac::TaskId) -> u64 {
    broker.get_with_last_event_id(id).await.unwrap().expect("a record").1
}
