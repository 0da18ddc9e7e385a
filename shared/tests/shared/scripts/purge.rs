//! Purge: every pending task revoked (the script settles them in batches), scheduled and
//! running ones left alone.

use celeriac::TaskState;
use celeriac::broker::NewTask;
use serde_json::json;

use super::{claim_ids, echoes, queue, run_one, state};
use crate::common::redis_and_broker;

#[tokio::test]
async fn a_purge_revokes_every_pending_task_and_leaves_others_alone() {
    let (_redis, broker) = redis_and_broker();
    let tasks = echoes(1234);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let mut later = NewTask::new(&queue(), "echo", &json!("later"));
    later.due_ms = Some(broker.clock().now_ms() + 60_000);
    broker.enqueue(&queue(), std::slice::from_ref(&later), 0, None).await.unwrap();
    let running = run_one(&broker, "w1").await;
    assert_eq!(broker.purge(&queue()).await.unwrap(), 1233);
    assert!(claim_ids(&broker, "w2", 10).await.is_empty());
    let record = broker.get(&tasks[500].id).await.unwrap().unwrap();
    assert_eq!((record.state, record.error.unwrap().kind.as_str()), (TaskState::Revoked, "Purged"));
    assert_eq!(
        state(&broker, &later.id).await,
        TaskState::Scheduled,
        "scheduled tasks are not pending"
    );
    assert_eq!(
        state(&broker, &running.id).await,
        TaskState::Started,
        "running tasks are not pending"
    );
    assert_eq!(broker.purge(&queue()).await.unwrap(), 0);
    let report = broker.audit().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}
