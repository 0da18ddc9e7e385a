//! Enqueue and poll through the real gateway with a real worker: the task record, long polls,
//! panics, result expiry.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestApp, test_registry};

#[tokio::test]
async fn accepted_means_stored_and_the_record_tells_the_outcome() {
    let app = TestApp::spawn().await;
    let response = app.post_json("/tasks", &json!({"task": "add", "args": [2, 2]})).await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let accepted: Value = response.json().await.unwrap();
    let id = accepted["task_id"].as_str().unwrap();
    assert_eq!(accepted["state"], "PENDING");
    assert_eq!(accepted["queue"], "default");
    assert_eq!(accepted["status_url"], location);
    assert_eq!(location, format!("/tasks/{id}"));

    // Stored before the 202: the record is there, though no worker runs yet.
    let record: Value = app.get(&location).await.json().await.unwrap();
    assert_eq!((record["state"].as_str(), record["task"].as_str()), (Some("PENDING"), Some("add")));

    app.start_worker(test_registry()).await;
    let record = app.wait_terminal(id).await;
    assert_eq!(record["state"], "SUCCESS");
    assert_eq!(record["result"], 4);
    assert_eq!(record["attempt"], 1);
    assert!(
        record["worker"].is_string() && record["started_at"].is_string() && record["finished_at"].is_string(),
        "{record}"
    );
}

/// Concurrent requests share script calls (broker/batcher.rs): each still gets its own task.
#[tokio::test]
async fn concurrent_emails_are_each_stored_with_their_own_fields() {
    let app = TestApp::spawn().await;
    let email = |i: usize| json!({"to": format!("user{i}@example.com"), "subject": format!("s{i}"), "body": "b"});
    let app = &app;
    let responses = futures::future::join_all((0..60).map(|i| async move { (i, app.post_json("/emails", &email(i)).await) })).await;
    let mut ids = std::collections::HashSet::new();
    for (i, response) in responses {
        assert_eq!(response.status(), 202);
        let accepted: Value = response.json().await.unwrap();
        let id = accepted["task_id"].as_str().unwrap().to_owned();
        let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
        assert_eq!(record["state"], "PENDING", "{record}");
        assert_eq!(record["args"]["to"], email(i)["to"], "{record}");
        assert_eq!(record["args"]["subject"], email(i)["subject"], "{record}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 60, "every request has a task of its own");
}

#[tokio::test]
async fn a_long_poll_returns_the_finished_record() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = app.enqueue("sleep", json!({"ms": 300})).await;
    let record: Value = app.get(&format!("/tasks/{id}?wait=30")).await.json().await.unwrap();
    assert_eq!(record["state"], "SUCCESS", "the poll ends with the task, not with the 30 s wait");
    assert_eq!(
        record["progress"],
        json!({"current": 10, "total": 10, "message": "slept 300 of 300 ms"})
    );
}

#[tokio::test]
async fn a_long_poll_gives_the_current_record_when_the_wait_runs_out() {
    let app = TestApp::spawn().await;
    let id = app.enqueue("noop", json!(null)).await;
    let record: Value = app.get(&format!("/tasks/{id}?wait=0.2")).await.json().await.unwrap();
    assert_eq!(record["state"], "PENDING");
    let response = app.get(&format!("/tasks/{id}?wait=61")).await;
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn a_panicking_task_fails_with_its_message_and_the_worker_lives_on() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = app.enqueue("panics", json!(null)).await;
    let record = app.wait_terminal(&id).await;
    assert_eq!(record["state"], "FAILURE");
    assert_eq!(record["error"]["kind"], "Panic");
    assert!(
        record["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deliberate panic for the test"),
        "{record}"
    );
    let after = app.enqueue("add", json!([1, 1])).await;
    assert_eq!(app.wait_terminal(&after).await["result"], 2);
}

#[tokio::test]
async fn a_failing_task_records_its_error() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = app.enqueue("fail", json!({"message": "boom"})).await;
    let record = app.wait_terminal(&id).await;
    assert_eq!(record["state"], "FAILURE");
    assert_eq!(record["error"], json!({"kind": "Fail", "message": "boom", "retryable": false}));
}

#[tokio::test]
async fn finished_records_expire_after_the_result_ttl() {
    let app = TestApp::spawn_with(|s| s.tasks.result_ttl = Duration::from_secs(1)).await;
    app.start_worker(test_registry()).await;
    let id = app.enqueue("noop", json!(null)).await;
    assert_eq!(app.wait_terminal(&id).await["state"], "SUCCESS");
    celeriac_testkit::eventually(Duration::from_secs(30), "the record expires", || async {
        (app.get(&format!("/tasks/{id}")).await.status() == 404).then_some(())
    })
    .await;
}

/// `[archive] enabled` reaches the gateway's broker: a revoke it records is handed over to the
/// queue's archive stream; with the setting off (the default), nothing is.
#[tokio::test]
async fn the_archive_setting_turns_the_hand_over_on_for_the_gateway() {
    for enabled in [false, true] {
        let app = TestApp::spawn_with(|s| s.archive.enabled = enabled).await;
        let response = app.post_json("/tasks", &serde_json::json!({"task": "noop", "countdown": 60})).await;
        let id: serde_json::Value = response.json().await.unwrap();
        let id = id["task_id"].as_str().unwrap().to_owned();
        let revoke = app.post_json(&format!("/tasks/{id}/revoke"), &serde_json::json!({})).await;
        assert_eq!(revoke.status(), 200, "{}", revoke.text().await.unwrap());
        let queue = celeriac::QueueName::parse("default").unwrap();
        let handed_over: u64 = redis::cmd("XLEN")
            .arg(app.broker.keys().archive(&queue))
            .query_async(&mut app.broker.connection())
            .await
            .unwrap();
        assert_eq!(handed_over, u64::from(enabled), "archive enabled: {enabled}");
    }
}
