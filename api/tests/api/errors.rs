//! Every row of docs/design.md's bad-input table ("Bad input and errors"), through the real gateway.

use serde_json::{Value, json};

use crate::common::TestApp;

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{body}");
    (status, body["error"].clone())
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/emails"))
        .header("content-type", "application/json")
        .body("{\"to\": ")
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("malformed_json")));
}

#[tokio::test]
async fn a_wrong_content_type_is_415() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/tasks"))
        .header("content-type", "text/plain")
        .body(r#"{"task":"noop"}"#)
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!((status, error["code"].as_str()), (415, Some("unsupported_media_type")));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = TestApp::spawn_with(|s| s.http.body_limit_bytes = 1024).await;
    let big = json!({"to": "ada@example.com", "subject": "s", "body": "x".repeat(4096)});
    let (status, error) = error_of(app.post_json("/emails", &big).await).await;
    assert_eq!((status, error["code"].as_str()), (413, Some("payload_too_large")));
}

#[tokio::test]
async fn invalid_or_missing_fields_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        ("/emails", json!({"to": "not-an-address", "subject": "s", "body": "b"}), "to"),
        ("/emails", json!({"subject": "s", "body": "b"}), "to"),
        (
            "/emails",
            json!({"to": "ada@example.com", "subject": "s", "body": "b", "options": {"countdown": -1}}),
            "countdown",
        ),
        ("/tasks", json!({"task": "noop", "countdown": -5}), "countdown"),
        ("/tasks", json!({"task": "noop", "eta": "tomorrow"}), "eta"),
        ("/tasks", json!({"task": "noop", "expires": "never"}), "expires"),
        ("/tasks", json!({"task": "noop", "time_limit": 0}), "time_limit"),
        ("/tasks", json!({"task": "noop", "retry_delay": -1}), "retry_delay"),
        ("/tasks", json!({"task": "noop", "retry_backoff": "yes"}), "retry_backoff"),
        ("/tasks", json!({"task": "noop", "queue": "{bad}"}), "queue"),
        ("/tasks", json!({"task": "add", "args": ["x"]}), "args"),
        ("/tasks", json!({"task": "noop", "priority": 12}), "priority"),
        ("/tasks", json!({"task": "noop", "urgency": 3}), "urgency"),
        ("/reports/bad%20user", json!({}), "user_id"),
        ("/reports/42", json!({"format": "docx"}), "format"),
    ];
    for (path, body, field) in cases {
        let (status, error) = error_of(app.post_json(path, &body).await).await;
        assert_eq!(status, 422, "{path} {body}: {error}");
        assert_eq!(error["field"].as_str(), Some(field), "{path} {body}: {error}");
    }
}

#[tokio::test]
async fn an_unknown_task_is_422_listing_the_known_names() {
    let app = TestApp::spawn().await;
    let (status, error) = error_of(app.post_json("/tasks", &json!({"task": "no_such_task"})).await).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("unknown_task")));
    let known: Vec<&str> = error["known_tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for name in ["add", "echo", "fail", "generate_report", "noop", "send_email", "sleep"] {
        assert!(known.contains(&name), "{known:?}");
    }
}

#[tokio::test]
async fn a_full_queue_is_429_with_retry_after_and_stores_nothing() {
    let app = TestApp::spawn_with(|s| {
        s.tasks.max_pending.insert(celeriac::QueueName::parse("default").unwrap(), 2);
    })
    .await;
    app.enqueue("noop", json!(null)).await;
    app.enqueue("noop", json!(null)).await;
    let response = app.post_json("/tasks", &json!({"task": "noop"})).await;
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("5"));
    let (status, error) = error_of(response).await;
    assert_eq!((status, error["code"].as_str()), (429, Some("queue_full")));
    let depth: u64 = redis::AsyncCommands::llen(
        &mut app.broker.connection(),
        app.broker.keys().pending(&celeriac::QueueName::parse("default").unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(depth, 2);
}

#[tokio::test]
async fn concurrent_calls_to_a_bounded_queue_are_accepted_up_to_its_bound_and_no_further() {
    let app = TestApp::spawn_with(|s| {
        s.tasks.max_pending.insert(celeriac::QueueName::parse("default").unwrap(), 4);
    })
    .await;
    let noop = json!({"task": "noop"});
    let responses = futures::future::join_all((0..24).map(|_| app.post_json("/tasks", &noop))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 4, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 20, "{statuses:?}");
    for response in responses.into_iter().filter(|r| r.status() == 202) {
        let id = response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned();
        assert_eq!(app.get(&format!("/tasks/{id}")).await.status(), 200, "an accepted task is stored");
    }
}

#[tokio::test]
async fn an_enqueue_whose_redis_reply_is_lost_is_accepted_once() {
    let (app, proxy) = TestApp::spawn_behind_reply_cutter().await;
    let email = |to: &str| json!({"to": to, "subject": "s", "body": "b"});
    // A first request loads the script, so the one cut below runs it.
    assert_eq!(app.post_json("/emails", &email("first@example.com")).await.status(), 202);
    proxy.cut_reply_to(b"lost-reply@example.com");
    let response = app.post_json("/emails", &email("lost-reply@example.com")).await;
    assert_eq!(response.status(), 202, "stored, though Redis' first answer was lost");
    assert_eq!(proxy.cuts(), 1);
    let accepted: Value = response.json().await.unwrap();
    let task = app.get(&format!("/tasks/{}", accepted["task_id"].as_str().unwrap())).await;
    assert_eq!(task.status(), 200);
    let depth: u64 = redis::AsyncCommands::llen(
        &mut app.broker.connection(),
        app.broker.keys().pending(&celeriac::QueueName::parse("emails").unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(depth, 2, "each accepted task is queued once");
}

#[tokio::test]
async fn redis_down_is_503_without_internal_details_and_readiness_turns_false() {
    let mut app = TestApp::spawn_single().await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.redis.kill();
    let response = app
        .post_json("/emails", &json!({"to": "ada@example.com", "subject": "s", "body": "b"}))
        .await;
    let (status, error) = error_of(response).await;
    assert_eq!((status, error["code"].as_str()), (503, Some("unavailable")));
    let text = error.to_string().to_lowercase();
    assert!(
        !text.contains("redis:") && !text.contains("connection refused") && !text.contains("os error"),
        "{text}"
    );
    assert_eq!(app.get("/readyz").await.status(), 503);
    assert_eq!(app.get("/healthz").await.status(), 200, "alive even when not ready");

    app.redis.restart();
    celeriac_testkit::eventually(std::time::Duration::from_secs(60), "the gateway reconnects", || async {
        (app.get("/readyz").await.status() == 200).then_some(())
    })
    .await;
    assert_eq!(app.post_json("/tasks", &json!({"task": "noop"})).await.status(), 202);
}

#[tokio::test]
async fn unknown_ids_and_routes_are_404_and_wrong_methods_405() {
    let app = TestApp::spawn().await;
    for path in ["/tasks/default-0193a1b2c3d4e5f60718293a4b5c6d7e", "/tasks/not-an-id", "/nowhere"] {
        let (status, error) = error_of(app.get(path).await).await;
        assert_eq!((status, error["code"].as_str()), (404, Some("not_found")), "{path}");
    }
    let response = app.delete("/emails").await;
    assert_eq!(error_of(response).await.0, 405);
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_task_and_rejects_reuse() {
    let app = TestApp::spawn().await;
    let post = |body: Value| {
        let app = &app;
        async move { app.post_json_with_key("/tasks", "signup-42", &body).await }
    };
    let first: Value = post(json!({"task": "echo", "args": 1})).await.json().await.unwrap();
    let again = post(json!({"task": "echo", "args": 1})).await;
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["task_id"], first["task_id"]);
    let (status, error) = error_of(post(json!({"task": "echo", "args": 2})).await).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("idempotency_key_reused")));
}
