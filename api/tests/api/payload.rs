//! Payload limits over HTTP: arguments over `tasks.max_args_bytes` are refused with 413
//! naming the limit; large arguments and results, stored compressed, read back identical
//! through `GET /tasks/{id}`, the listing and the event stream.

use serde_json::{Value, json};

use celeriac_testkit::order_json;

use crate::common::{TestApp, test_registry};

#[tokio::test]
async fn arguments_over_the_limit_are_413_naming_the_limit() {
    let app = TestApp::spawn_with(|s| s.common.tasks.max_args_bytes = 2000).await;
    let response = app.post_json("/tasks", &json!({"task": "echo", "args": order_json(5000)})).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    assert_eq!(body["error"]["field"], "args", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("2000") && message.contains("tasks.max_args_bytes"), "{message}");
    // Under the limit it is accepted.
    app.enqueue("echo", order_json(1000)).await;
}

#[tokio::test]
async fn compressed_arguments_and_results_read_back_identical_over_http() {
    let app = TestApp::spawn().await;
    let args = order_json(20_000);
    let id = app.enqueue("echo", args.clone()).await;
    app.start_worker(test_registry()).await;
    let record = app.wait_terminal(&id).await;
    assert_eq!(
        (&record["state"], &record["args"], &record["result"]),
        (&json!("SUCCESS"), &args, &args)
    );

    let listing: Value = app.get("/tasks?queue=default").await.json().await.unwrap();
    let listed = listing["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task_id"] == id.as_str())
        .unwrap();
    assert_eq!((&listed["args"], &listed["result"]), (&args, &args));

    // The event stream of a finished task: its snapshot (the record) and the end.
    let text = app.get(&format!("/tasks/{id}/events")).await.text().await.unwrap();
    let snapshot = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str::<Value>(d.trim()).unwrap())
        .find(|d| d.get("result").is_some())
        .expect("a snapshot with the result");
    assert_eq!((&snapshot["args"], &snapshot["result"]), (&args, &args));
}
