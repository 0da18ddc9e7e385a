//! W3C `traceparent` through the gateway and the worker: a valid header's trace id is kept in
//! the task record and continued by the run (the task context hands the run's own
//! `traceparent` to the handler); an invalid header is ignored. (The per-request log lines:
//! `tests/request_log.rs`.)

use serde_json::{Value, json};

use crate::common::{TestApp, test_registry};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{CALLER_SPAN}-01")
}

async fn enqueue_traced(app: &TestApp, path: &str, body: &Value, traceparent: &str) -> String {
    let r = app
        .client
        .post(app.url(path))
        .header("traceparent", traceparent)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{path}");
    r.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_traceparent_is_kept_in_the_record_and_continued_by_the_run() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = enqueue_traced(&app, "/tasks", &json!({"task": "trace_echo"}), &traceparent()).await;
    let record = app.wait_terminal(&id).await;
    assert_eq!(record["state"], "SUCCESS", "{record}");
    assert_eq!(record["trace_id"], TRACE_ID, "{record}");
    let passed = record["result"].as_str().expect("the handler saw a traceparent");
    let parts: Vec<&str> = passed.split('-').collect();
    assert_eq!(parts.len(), 4, "{passed}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE_ID, "01"), "same trace, same flags");
    assert_eq!(parts[2].len(), 16);
    assert_ne!(parts[2], CALLER_SPAN, "the run has a span id of its own");
}

#[tokio::test]
async fn a_retried_task_keeps_its_trace() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = enqueue_traced(&app, "/tasks", &json!({"task": "flaky", "args": {"fail_times": 1}}), &traceparent()).await;
    let record = app.wait_terminal(&id).await;
    assert_eq!((record["state"].as_str(), record["attempt"].as_u64()), (Some("SUCCESS"), Some(2)));
    assert_eq!(record["trace_id"], TRACE_ID);
}

#[tokio::test]
async fn every_enqueue_route_keeps_the_trace() {
    let app = TestApp::spawn().await;
    let email = json!({"to": "ada@example.com", "subject": "s", "body": "b"});
    for (path, body) in [("/emails", email), ("/reports/42", json!({})), ("/tasks", json!({"task": "noop"}))] {
        let id = enqueue_traced(&app, path, &body, &traceparent()).await;
        let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
        assert_eq!(record["trace_id"], TRACE_ID, "{path}: {record}");
    }
}

#[tokio::test]
async fn invalid_traceparents_are_ignored() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    for bad in [
        "garbage",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
    ] {
        let id = enqueue_traced(&app, "/tasks", &json!({"task": "trace_echo"}), bad).await;
        let record = app.wait_terminal(&id).await;
        assert_eq!(record["state"], "SUCCESS", "{bad}: {record}");
        assert_eq!(record["trace_id"], Value::Null, "{bad}: {record}");
        assert_eq!(record["result"], Value::Null, "{bad}: the run has no trace");
    }
    // And without the header at all.
    let id = app.enqueue("trace_echo", json!(null)).await;
    let record = app.wait_terminal(&id).await;
    assert_eq!((record["trace_id"].clone(), record["result"].clone()), (Value::Null, Value::Null));
}

#[tokio::test]
async fn every_member_of_a_workflow_continues_the_trace() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let chain = json!({"chain": [{"task": "trace_echo"}, {"task": "trace_echo"}]});
    let r = app
        .client
        .post(app.url("/workflows"))
        .header("traceparent", traceparent())
        .json(&chain)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let members: Vec<String> = body["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(members.len(), 2);
    // The second member is enqueued by the worker when the first ends.
    for id in &members {
        let record = app.wait_terminal(id).await;
        assert_eq!(record["state"], "SUCCESS", "{record}");
        assert_eq!(record["trace_id"], TRACE_ID, "{record}");
        let passed = record["result"].as_str().expect("the handler saw a traceparent");
        assert!(passed.starts_with(&format!("00-{TRACE_ID}-")), "{passed}");
    }
}
