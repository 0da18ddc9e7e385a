//! Tokens scoped to queues and task types, through the real gateway, a test per route class:
//! enqueue, reading a task (record, events, report file, workflow), the listing, the queue
//! and schedule admin routes, workers and metrics (what the dashboard reads). A token may not
//! reach a queue or task type outside its scope (403), and lists leave them out.

use celeriac::QueueName;
use celeriac_api::settings::{ApiToken, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::TestApp;

const ADMIN: &str = "admin-token-0123456789abcdef";
/// A producer limited to the `billing` queue.
const BILLING: &str = "billing-producer-0123456789";
/// An admin limited to the `billing` queue.
const BILLING_ADMIN: &str = "billing-admin-0123456789ab";
/// A producer limited to the task type `add`.
const ADDER: &str = "adder-producer-0123456789ab";

fn token(name: &str, token: &str, role: Role, queues: &[&str], tasks: &[&str]) -> ApiToken {
    ApiToken {
        name: name.into(),
        token: token.into(),
        role,
        queues: queues.iter().map(|q| QueueName::parse(q).unwrap()).collect(),
        tasks: tasks.iter().map(|t| t.to_string()).collect(),
    }
}

async fn app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.auth.admin_tokens = vec![ADMIN.into()];
        s.auth.tokens = vec![
            token("billing", BILLING, Role::Producer, &["billing"], &[]),
            token("billing-admin", BILLING_ADMIN, Role::Admin, &["billing"], &[]),
            token("adder", ADDER, Role::Producer, &[], &["add"]),
        ];
    })
    .await
}

async fn call(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request sent")
}

async fn status(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> StatusCode {
    call(app, method, path, token, body).await.status()
}

/// Enqueues `add` on `queue` with the unlimited admin token; its id.
async fn seed(app: &TestApp, queue: &str) -> String {
    let r = call(
        app,
        Method::POST,
        "/tasks",
        ADMIN,
        Some(json!({"task": "add", "args": [1, 2], "queue": queue})),
    )
    .await;
    assert_eq!(r.status(), 202);
    r.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn enqueue_routes_refuse_queues_and_task_types_out_of_scope() {
    let app = app().await;
    let add = |queue: &str| Some(json!({"task": "add", "args": [1, 2], "queue": queue}));
    assert_eq!(status(&app, Method::POST, "/tasks", BILLING, add("billing")).await, 202);
    assert_eq!(status(&app, Method::POST, "/tasks", BILLING, add("default")).await, 403);
    let email = json!({"to": "a@example.com", "subject": "s", "body": "b"});
    assert_eq!(status(&app, Method::POST, "/emails", BILLING, Some(email)).await, 403);
    assert_eq!(status(&app, Method::POST, "/reports/42", BILLING, None).await, 403);
    let chain = |queue: &str| Some(json!({"chain": [{"task": "add", "args": [1, 1], "queue": queue}]}));
    assert_eq!(status(&app, Method::POST, "/workflows", BILLING, chain("billing")).await, 202);
    assert_eq!(status(&app, Method::POST, "/workflows", BILLING, chain("default")).await, 403);
    // Scoped by task type.
    assert_eq!(status(&app, Method::POST, "/tasks", ADDER, add("default")).await, 202);
    let echo = Some(json!({"task": "echo", "args": [1]}));
    let r = call(&app, Method::POST, "/tasks", ADDER, echo).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"].as_str().unwrap().contains("echo"), "{body}");
    // Nothing was stored by the refused calls.
    let listing: Value = call(&app, Method::GET, "/tasks?queue=default", ADMIN, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listing["tasks"].as_array().unwrap().len(), 1, "only the adder's task: {listing}");
}

#[tokio::test]
async fn reading_a_task_out_of_scope_is_refused() {
    let app = app().await;
    let mine = seed(&app, "billing").await;
    let other = seed(&app, "default").await;
    assert_eq!(status(&app, Method::GET, &format!("/tasks/{mine}"), BILLING, None).await, 200);
    assert_eq!(status(&app, Method::GET, &format!("/tasks/{other}"), BILLING, None).await, 403);
    assert_eq!(
        status(&app, Method::GET, &format!("/tasks/{other}/events"), BILLING, None).await,
        403
    );
    let report = call(&app, Method::POST, "/reports/7", ADMIN, None)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let report_file = format!("/reports/{}/file", report["task_id"].as_str().unwrap());
    assert_eq!(status(&app, Method::GET, &report_file, BILLING, None).await, 403);
    let workflow = call(
        &app,
        Method::POST,
        "/workflows",
        ADMIN,
        Some(json!({"chain": [{"task": "add", "args": [1, 1]}]})),
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    let path = format!("/workflows/{}", workflow["workflow_id"].as_str().unwrap());
    assert_eq!(status(&app, Method::GET, &path, BILLING, None).await, 403);
    assert_eq!(status(&app, Method::GET, &path, ADMIN, None).await, 200);
    // By task type: the adder reads `add` tasks only.
    assert_eq!(status(&app, Method::GET, &format!("/tasks/{other}"), ADDER, None).await, 200);
    let echo = call(&app, Method::POST, "/tasks", ADMIN, Some(json!({"task": "echo", "args": [1]})))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let echo_path = format!("/tasks/{}", echo["task_id"].as_str().unwrap());
    assert_eq!(status(&app, Method::GET, &echo_path, ADDER, None).await, 403);
}

#[tokio::test]
async fn admin_routes_honour_the_scope_and_lists_leave_other_queues_out() {
    let app = app().await;
    let mine = seed(&app, "billing").await;
    let other = seed(&app, "default").await;

    // The listing (the dashboard's task table).
    let listing: Value = call(&app, Method::GET, "/tasks", BILLING_ADMIN, None).await.json().await.unwrap();
    let ids: Vec<&str> = listing["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    assert_eq!(status(&app, Method::GET, "/tasks?queue=default", BILLING_ADMIN, None).await, 403);

    // Queues.
    let queues: Value = call(&app, Method::GET, "/queues", BILLING_ADMIN, None).await.json().await.unwrap();
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["billing"]);
    for path in ["/queues/default/pause", "/queues/default/resume"] {
        assert_eq!(status(&app, Method::POST, path, BILLING_ADMIN, None).await, 403, "{path}");
    }
    assert_eq!(
        status(&app, Method::DELETE, "/queues/default/pending", BILLING_ADMIN, None).await,
        403
    );
    assert_eq!(status(&app, Method::GET, "/queues/default/dead", BILLING_ADMIN, None).await, 403);
    assert_eq!(status(&app, Method::POST, "/queues/billing/pause", BILLING_ADMIN, None).await, 200);

    // Revoke and retry.
    assert_eq!(
        status(&app, Method::POST, &format!("/tasks/{other}/revoke"), BILLING_ADMIN, None).await,
        403
    );
    assert_eq!(
        status(&app, Method::POST, &format!("/tasks/{other}/retry"), BILLING_ADMIN, None).await,
        403
    );
    assert_eq!(
        status(&app, Method::POST, &format!("/tasks/{mine}/revoke"), BILLING_ADMIN, None).await,
        200
    );

    // Schedules.
    let schedule = |queue: &str| Some(json!({"task": "add", "args": [1, 2], "every": "1h", "queue": queue}));
    assert_eq!(
        status(&app, Method::PUT, "/schedules/theirs", ADMIN, schedule("default")).await,
        201
    );
    assert_eq!(
        status(&app, Method::PUT, "/schedules/ours", BILLING_ADMIN, schedule("billing")).await,
        201
    );
    assert_eq!(
        status(&app, Method::PUT, "/schedules/sneaky", BILLING_ADMIN, schedule("default")).await,
        403
    );
    let listed: Value = call(&app, Method::GET, "/schedules", BILLING_ADMIN, None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ours"]);
    assert_eq!(status(&app, Method::GET, "/schedules/theirs", BILLING_ADMIN, None).await, 403);
    assert_eq!(status(&app, Method::POST, "/schedules/theirs/run", BILLING_ADMIN, None).await, 403);
    assert_eq!(
        status(&app, Method::POST, "/schedules/theirs/pause", BILLING_ADMIN, None).await,
        403
    );
    assert_eq!(status(&app, Method::DELETE, "/schedules/theirs", BILLING_ADMIN, None).await, 403);

    // Metrics and workers.
    let metrics = call(&app, Method::GET, "/metrics", BILLING_ADMIN, None).await.text().await.unwrap();
    assert!(metrics.contains("queue=\"billing\""), "{metrics}");
    assert!(!metrics.contains("queue=\"default\""), "{metrics}");
    let all = call(&app, Method::GET, "/metrics", ADMIN, None).await.text().await.unwrap();
    assert!(all.contains("queue=\"default\""));
    app.start_worker(crate::common::test_registry()).await;
    let workers = |token: &'static str| {
        let app = &app;
        async move {
            let body: Value = call(app, Method::GET, "/workers", token, None).await.json().await.unwrap();
            body["workers"].as_array().unwrap().len()
        }
    };
    celeriac_testkit::eventually(std::time::Duration::from_secs(10), "the worker registers", || async {
        (workers(ADMIN).await == 1).then_some(())
    })
    .await;
    assert_eq!(workers(BILLING_ADMIN).await, 0, "the test worker does not consume billing");
}

#[tokio::test]
async fn a_token_for_a_sharded_queue_may_use_every_shard_of_it() {
    let app = TestApp::spawn_with(|s| {
        s.auth.admin_tokens = vec![ADMIN.into()];
        s.auth.tokens = vec![token("billing", BILLING, Role::Producer, &["billing"], &[])];
        s.common.tasks.shards.insert(QueueName::parse("billing").unwrap(), 4);
    })
    .await;
    // Enqueues go to the shards in turn; each is accepted, and each task can be read back.
    for n in 0..8 {
        let response = call(
            &app,
            Method::POST,
            "/tasks",
            BILLING,
            Some(json!({"task": "add", "args": [n, 1], "queue": "billing"})),
        )
        .await;
        assert_eq!(response.status(), 202);
        let id = response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned();
        assert_eq!(status(&app, Method::GET, &format!("/tasks/{id}"), BILLING, None).await, 200, "{id}");
    }
}
