//! The schedule scripts against a real redis-server: put keeps the state of an unchanged
//! definition, the cursor never moves back, the first report of an occurrence wins.

use std::time::Duration;

use celeriac::broker::{DeleteOutcome, FiredRun, PutOutcome, ScheduleSource};
use celeriac::schedule::ScheduleDef;
use celeriac::{Broker, QueueName, TaskId};
use celeriac_testkit::{RedisServer, unique_namespace};
use serde_json::json;

fn def(every: &str) -> ScheduleDef {
    serde_json::from_value(json!({"name": "s", "task": "noop", "every": every, "queue": "default"})).unwrap()
}

fn id(seed: &str) -> TaskId {
    TaskId::derived(&QueueName::parse("default").unwrap(), seed)
}

#[tokio::test]
async fn put_delete_and_records_keep_the_state_consistent() {
    let redis = RedisServer::start();
    let broker = Broker::connect(&redis.url(), &unique_namespace(), Duration::from_secs(60)).unwrap();
    let now = broker.clock().now_ms();
    assert_eq!(
        broker.put_schedule(&def("1m"), ScheduleSource::Settings).await.unwrap(),
        PutOutcome::Created
    );
    let cursor = broker.schedule("s").await.unwrap().unwrap().state.cursor.unwrap();
    assert!(cursor >= now);

    // Reports from racing beats, in any order: the cursor only moves forward, and the first
    // report of an occurrence is the one recorded.
    let run = |o: i64, seed: &str| FiredRun {
        occurrence_ms: Some(o),
        task_id: id(seed),
    };
    assert!(
        broker
            .record_schedule("s", Some(cursor + 60_000), Some(&run(cursor + 60_000, "a")))
            .await
            .unwrap()
    );
    assert!(
        broker
            .record_schedule("s", Some(cursor + 60_000), Some(&run(cursor + 60_000, "b")))
            .await
            .unwrap()
    );
    assert!(broker.record_schedule("s", Some(cursor + 1), None).await.unwrap());
    let state = broker.schedule("s").await.unwrap().unwrap().state;
    assert_eq!(state.cursor, Some(cursor + 60_000));
    assert_eq!(state.last_task_id, Some(id("a")));
    assert_eq!(state.last_occurrence_ms, Some(cursor + 60_000));

    // A manual run is recorded as the last run without touching the cursor.
    let manual = FiredRun {
        occurrence_ms: None,
        task_id: id("manual"),
    };
    broker.record_schedule("s", None, Some(&manual)).await.unwrap();
    let state = broker.schedule("s").await.unwrap().unwrap().state;
    assert_eq!((state.cursor, state.last_task_id), (Some(cursor + 60_000), Some(id("manual"))));

    // Writing the same definition again (a beat restart) keeps the state; the API cannot
    // replace or delete a settings schedule.
    assert_eq!(
        broker.put_schedule(&def("1m"), ScheduleSource::Settings).await.unwrap(),
        PutOutcome::Unchanged
    );
    assert_eq!(broker.schedule("s").await.unwrap().unwrap().state.cursor, Some(cursor + 60_000));
    assert_eq!(
        broker.put_schedule(&def("2m"), ScheduleSource::Api).await.unwrap(),
        PutOutcome::Refused
    );
    assert_eq!(
        broker.delete_schedule("s", ScheduleSource::Api).await.unwrap(),
        DeleteOutcome::Refused
    );
    assert_eq!(
        broker.put_schedule(&def("2m"), ScheduleSource::Settings).await.unwrap(),
        PutOutcome::Replaced
    );

    assert_eq!(
        broker.delete_schedule("s", ScheduleSource::Settings).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(broker.schedule("s").await.unwrap().is_none());
    assert!(
        !broker.record_schedule("s", Some(1), Some(&manual)).await.unwrap(),
        "no state for a deleted schedule"
    );
    assert!(!broker.set_schedule_paused("s", true).await.unwrap());
    assert!(broker.schedule("s").await.unwrap().is_none());
    assert_eq!(
        broker.delete_schedule("s", ScheduleSource::Api).await.unwrap(),
        DeleteOutcome::Missing
    );
}
