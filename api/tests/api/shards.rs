//! Sharded queues through the gateway and an in-process worker: shards declared in the
//! settings and raised by `PUT /queues/{q}/shards` (never lowered), tasks spread over the
//! shards or kept in one by a `partition_key`, a shard refused as a call's queue, the queue
//! shown as one in `GET /queues`, and a worker given the queue running every shard's tasks.

use std::collections::HashSet;

use celeriac::QueueName;
use celeriac_worker::{Worker, WorkerConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, test_registry};

async fn put_shards(app: &TestApp, queue: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .client
        .put(app.url(&format!("/queues/{queue}/shards")))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn post(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let response = app.post_json("/tasks", &body).await;
    (response.status(), response.json().await.unwrap())
}

/// The shard named by a task id: what is before its last '-'.
fn shard_of(id: &str) -> String {
    id.rsplit_once('-').unwrap().0.to_owned()
}

#[tokio::test]
async fn a_sharded_queue_is_spread_shown_as_one_and_fully_consumed() {
    let app = TestApp::spawn_with(|s| {
        s.common.tasks.shards.insert(QueueName::parse("spread").unwrap(), 2);
    })
    .await;

    // Raised from the settings' 2, never lowered; a shard or 0 is refused, naming the field.
    let (status, body) = put_shards(&app, "spread", json!({"shards": 4})).await;
    assert_eq!((status, body["shards"].as_u64()), (StatusCode::OK, Some(4)), "{body}");
    let (status, body) = put_shards(&app, "spread", json!({"shards": 3})).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("shards")),
        "{body}"
    );
    let (status, body) = put_shards(&app, "spread", json!({"shards": 0})).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("shards")),
        "{body}"
    );
    let (status, body) = put_shards(&app, "spread~1", json!({"shards": 2})).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("queue")),
        "{body}"
    );

    let mut ids = Vec::new();
    for _ in 0..8 {
        let (status, body) = post(&app, json!({"task": "noop", "args": null, "queue": "spread"})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        ids.push(body["task_id"].as_str().unwrap().to_owned());
    }
    let shards: HashSet<String> = ids.iter().map(|id| shard_of(id)).collect();
    assert_eq!(
        shards,
        HashSet::from(["spread", "spread~1", "spread~2", "spread~3"].map(String::from))
    );
    let mut keyed = HashSet::new();
    for _ in 0..3 {
        let (status, body) = post(
            &app,
            json!({"task": "noop", "args": null, "queue": "spread", "partition_key": "customer-7"}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let id = body["task_id"].as_str().unwrap().to_owned();
        keyed.insert(shard_of(&id));
        ids.push(id);
    }
    assert_eq!(keyed.len(), 1, "one key, one shard: {keyed:?}");
    let (status, body) = post(&app, json!({"task": "noop", "args": null, "queue": "spread~2"})).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("queue")),
        "{body}"
    );

    let all: Value = app.get("/queues").await.json().await.unwrap();
    let spread: Vec<&Value> = all["queues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["name"].as_str().unwrap().starts_with("spread"))
        .collect();
    assert_eq!(spread.len(), 1, "one queue: {all}");
    assert_eq!(
        (spread[0]["pending"].as_u64(), spread[0]["shards"].as_u64()),
        (Some(11), Some(4)),
        "{all}"
    );
    assert_eq!(spread[0]["shard_pending"].as_array().unwrap().len(), 4);

    // A worker given the queue consumes every shard.
    let mut config = WorkerConfig::from_settings(&app.worker_settings());
    config.queues = vec![QueueName::parse("spread").unwrap()];
    let registry = test_registry();
    let specs: Vec<_> = registry.specs().cloned().collect();
    app.broker.register_tasks(&specs).await.unwrap();
    tokio::spawn(Worker::new(app.broker.clone(), registry, config).run(app.stop.child_token()));
    for id in &ids {
        let record = app.wait_terminal(id).await;
        assert_eq!(record["state"], "SUCCESS", "{record}");
    }
}

#[tokio::test]
async fn on_a_sharded_queue_a_repeated_request_and_a_unique_tasks_repeats_meet_their_first_task() {
    let app = TestApp::spawn_with(|s| {
        s.common.tasks.shards.insert(QueueName::parse("spread").unwrap(), 4);
    })
    .await;
    // The same Idempotency-Key, sent again and again: one task, whichever shard is next in turn.
    let body = json!({"task": "echo", "args": [1, 2], "queue": "spread"});
    let mut ids = HashSet::new();
    for _ in 0..8 {
        let response = app.post_json_with_key("/tasks", "order-42", &body).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let answer: Value = response.json().await.unwrap();
        ids.insert(answer["task_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "one task for one key: {ids:?}");
    // A unique task called again: the first task's id, marked as a duplicate.
    let unique = json!({"task": "echo", "args": [3, 4], "queue": "spread", "unique_for": 60});
    let (status, first) = post(&app, unique.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    for _ in 0..8 {
        let (status, again) = post(&app, unique.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{again}");
        assert_eq!(again["task_id"], first["task_id"], "{again}");
        assert_eq!(again["duplicate"], true, "{again}");
    }
}
