//! Completion webhooks through the gateway: `callback_url` is checked (a URL, and a secret to
//! sign with), and a task enqueued over HTTP with one is posted, signed, to a real receiver
//! when it ends, its delivery shown by `GET /tasks/{id}`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use celeriac::signing::{DEFAULT_TOLERANCE, SIGNATURE_HEADER, verify};
use celeriac_testkit::eventually;
use serde_json::{Value, json};

use crate::common::{TEST_WEBHOOK_SECRET, TestApp, test_registry};

type Got = Arc<Mutex<Vec<(String, Bytes)>>>;

/// A receiver answering `200` to every request; what it got (signature header, body).
async fn receiver() -> (String, Got) {
    let got: Got = Arc::default();
    let handler = |State(got): State<Got>, headers: HeaderMap, body: Bytes| async move {
        let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        got.lock().unwrap().push((signature.to_owned(), body));
    };
    let app = Router::new().route("/done", post(handler)).with_state(Arc::clone(&got));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/done", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

async fn refusal(app: &TestApp, body: Value) -> Value {
    let response = app.post_json("/tasks", &body).await;
    assert_eq!(response.status(), 422, "{body}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_callback_url_that_is_not_an_http_url_is_refused_naming_it() {
    let app = TestApp::spawn().await;
    for bad in ["ftp://example.com/x", "not a url", "https://", "http://a b/c"] {
        let error = refusal(&app, json!({"task": "noop", "callback_url": bad})).await;
        assert_eq!(error["error"]["field"], "callback_url", "{bad}: {error}");
    }
    let email = json!({"to": "ada@example.com", "subject": "s", "body": "b", "options": {"callback_url": "mailto:x"}});
    let response = app.post_json("/emails", &email).await;
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["field"], "callback_url", "{error}");
}

#[tokio::test]
async fn without_a_webhooks_secret_a_callback_url_is_refused_rather_than_never_sent() {
    let app = TestApp::spawn_with(|settings| settings.webhooks.secret = None).await;
    let error = refusal(&app, json!({"task": "noop", "callback_url": "http://127.0.0.1:9/done"})).await;
    assert_eq!(error["error"]["field"], "callback_url", "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("webhooks.secret"), "{error}");
    let response = app.post_json("/tasks", &json!({"task": "noop"})).await;
    assert_eq!(response.status(), 202, "tasks without one still go");
}

#[tokio::test]
async fn a_task_enqueued_with_a_callback_url_is_posted_when_it_ends_and_shows_the_delivery() {
    let app = TestApp::spawn().await;
    let (url, got) = receiver().await;
    app.start_worker(test_registry()).await;
    let response = app
        .post_json("/tasks", &json!({"task": "add", "args": [20, 22], "callback_url": url}))
        .await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned();
    let (signature, body) = eventually(Duration::from_secs(30), "the webhook arrives", || async {
        got.lock().unwrap().first().cloned()
    })
    .await;
    let now = chrono::Utc::now().timestamp();
    verify(TEST_WEBHOOK_SECRET.as_bytes(), &signature, &body, now, DEFAULT_TOLERANCE).expect("signed with the secret");
    let posted: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (posted["task_id"].as_str(), posted["state"].as_str()),
        (Some(id.as_str()), Some("SUCCESS"))
    );
    assert_eq!(posted["task"]["result"], json!(42));
    let shown = eventually(Duration::from_secs(10), "GET /tasks/{id} shows the delivery", || async {
        let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
        (record["webhooks"].as_array().is_some_and(|d| !d.is_empty())).then_some(record)
    })
    .await;
    let delivery = &shown["webhooks"][0];
    assert_eq!(delivery["outcome"], "delivered", "{shown}");
    assert_eq!(delivery["status"], 200);
    assert_eq!(delivery["attempt"], 1);
    assert_eq!(shown["options"]["callback_url"], json!(url));
}

#[tokio::test]
async fn a_queue_subscription_gives_its_new_tasks_a_callback_url_until_it_ends() {
    let app = TestApp::spawn().await;
    let (url, got) = receiver().await;
    app.start_worker(test_registry()).await;
    let put = |body: Value| app.client.put(app.url("/queues/default/webhook")).json(&body).send();
    let response = put(json!({"url": url})).await.unwrap();
    assert_eq!(response.status(), 200);
    let shown: Value = app.get("/queues/default/webhook").await.json().await.unwrap();
    assert_eq!(shown, json!({"queue": "default", "url": url}));

    // A task naming no callback gets the queue's; one naming its own keeps it.
    let id = accepted(&app, json!({"task": "add", "args": [1, 2]})).await;
    let own = accepted(&app, json!({"task": "noop", "callback_url": "http://127.0.0.1:9/own"})).await;
    let record: Value = app.get(&format!("/tasks/{own}")).await.json().await.unwrap();
    assert_eq!(record["options"]["callback_url"], "http://127.0.0.1:9/own");
    let (_, body) = eventually(Duration::from_secs(30), "the subscribed queue's webhook", || async {
        got.lock().unwrap().first().cloned()
    })
    .await;
    let posted: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (posted["task_id"].as_str(), posted["state"].as_str()),
        (Some(id.as_str()), Some("SUCCESS"))
    );

    // Ended: new tasks get none; ending it twice is a 404.
    let response = app.client.delete(app.url("/queues/default/webhook")).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let after = accepted(&app, json!({"task": "noop"})).await;
    let record: Value = app.get(&format!("/tasks/{after}")).await.json().await.unwrap();
    assert!(record["options"].get("callback_url").is_none(), "{record}");
    let response = app.client.delete(app.url("/queues/default/webhook")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(app.get("/queues/default/webhook").await.status(), 404);

    // Bad values are refused naming the field.
    let response = put(json!({"url": "ftp://x"})).await.unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["field"], "url");
    let response = app
        .client
        .put(app.url("/queues/default~3/webhook"))
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422, "a shard is not a queue");
}

#[tokio::test]
async fn a_gateway_without_a_webhooks_secret_takes_no_subscription() {
    let app = TestApp::spawn_with(|settings| settings.webhooks.secret = None).await;
    let response = app
        .client
        .put(app.url("/queues/default/webhook"))
        .json(&json!({"url": "http://127.0.0.1:9/done"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("webhooks.secret"), "{error}");
}

async fn accepted(app: &TestApp, body: Value) -> String {
    let response = app.post_json("/tasks", &body).await;
    assert_eq!(response.status(), 202, "{body}");
    response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned()
}
