//! Bearer tokens and roles through the real gateway: 401 without a valid token (and never the
//! data), 403 for a producer on an admin route, open probes and docs, and the refusal to
//! start on a public address without tokens.

use celeriac_api::GatewaySettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::TestApp;

const PRODUCER: &str = "producer-token-0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789abcdef";

async fn with_tokens() -> TestApp {
    TestApp::spawn_with(|s| {
        s.auth.producer_tokens = vec![PRODUCER.into()];
        s.auth.admin_tokens = vec![ADMIN.into()];
    })
    .await
}

async fn call(app: &TestApp, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request sent")
}

/// A task and a workflow enqueued with the admin token; their ids.
async fn seed(app: &TestApp) -> (String, String) {
    let r = call(
        app,
        Method::POST,
        "/tasks",
        Some(ADMIN),
        Some(json!({"task": "add", "args": [40, 2]})),
    )
    .await;
    assert_eq!(r.status(), 202);
    let task: Value = r.json().await.unwrap();
    let r = call(
        app,
        Method::POST,
        "/workflows",
        Some(ADMIN),
        Some(json!({"chain": [{"task": "add", "args": [1, 1]}]})),
    )
    .await;
    assert_eq!(r.status(), 202);
    let workflow: Value = r.json().await.unwrap();
    (
        task["task_id"].as_str().unwrap().to_owned(),
        workflow["workflow_id"].as_str().unwrap().to_owned(),
    )
}

/// A request to make: method, path, JSON body.
type Call = (Method, String, Option<Value>);

/// Every protected route: the producer routes, then the admin routes.
fn routes(task: &str, workflow: &str) -> (Vec<Call>, Vec<Call>) {
    let producer = vec![
        (Method::POST, "/tasks".to_owned(), Some(json!({"task": "noop"}))),
        (Method::GET, format!("/tasks/{task}"), None),
        (
            Method::POST,
            "/emails".to_owned(),
            Some(json!({"to": "a@example.com", "subject": "s", "body": "b"})),
        ),
        (Method::POST, "/reports/42".to_owned(), None),
        (Method::GET, format!("/reports/{task}/file"), None),
        (Method::POST, "/workflows".to_owned(), Some(json!({"chain": [{"task": "noop"}]}))),
        (Method::GET, format!("/workflows/{workflow}"), None),
    ];
    let admin = vec![
        (Method::POST, format!("/tasks/{task}/revoke"), None),
        (Method::POST, format!("/tasks/{task}/retry"), None),
        (Method::POST, format!("/workflows/{workflow}/revoke"), None),
        (Method::GET, "/metrics".to_owned(), None),
    ];
    (producer, admin)
}

async fn assert_unauthorized(response: reqwest::Response, invalid_token: bool, secret: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert_eq!(challenge.contains(r#"error="invalid_token""#), invalid_token, "{challenge}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "only the error: {body}");
    assert!(!body.to_string().contains(secret), "never the data: {body}");
}

#[tokio::test]
async fn without_a_token_or_with_a_wrong_one_every_protected_route_is_401_and_shows_nothing() {
    let app = with_tokens().await;
    let (task, workflow) = seed(&app).await;
    let (producer, admin) = routes(&task, &workflow);
    for (method, path, body) in producer.into_iter().chain(admin) {
        let r = call(&app, method.clone(), &path, None, body.clone()).await;
        assert_unauthorized(r, false, "40").await;
        let r = call(&app, method.clone(), &path, Some("not-a-token-0123456789abcdef"), body.clone()).await;
        assert_unauthorized(r, true, "40").await;
        let r = call(&app, method, &path, Some(&PRODUCER[..PRODUCER.len() - 1]), body).await;
        assert_unauthorized(r, true, "40").await;
    }
    // Nothing happened: the task is still waiting, the workflow running.
    let record: Value = call(&app, Method::GET, &format!("/tasks/{task}"), Some(ADMIN), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record["state"], "PENDING");
    let status: Value = call(&app, Method::GET, &format!("/workflows/{workflow}"), Some(ADMIN), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "RUNNING");
}

#[tokio::test]
async fn a_producer_may_enqueue_and_read_but_gets_403_on_admin_routes() {
    let app = with_tokens().await;
    let (task, workflow) = seed(&app).await;
    let (producer, admin) = routes(&task, &workflow);
    for (method, path, body) in producer {
        let r = call(&app, method.clone(), &path, Some(PRODUCER), body).await;
        let status = r.status();
        // The report file of an `add` task is a 404: past the check, answered by the handler.
        assert!(
            status.is_success() || (path.ends_with("/file") && status == StatusCode::NOT_FOUND),
            "{method} {path}: {status} {:?}",
            r.text().await
        );
    }
    let record: Value = call(&app, Method::GET, &format!("/tasks/{task}"), Some(PRODUCER), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record["args"], json!([40, 2]));
    for (method, path, body) in admin {
        let r = call(&app, method.clone(), &path, Some(PRODUCER), body).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("admin"), "{body}");
    }
    let record: Value = call(&app, Method::GET, &format!("/tasks/{task}"), Some(PRODUCER), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record["state"], "PENDING", "the producer's revoke did nothing");
}

#[tokio::test]
async fn an_admin_may_use_every_route() {
    let app = with_tokens().await;
    let (task, workflow) = seed(&app).await;
    let (producer, admin) = routes(&task, &workflow);
    for (method, path, body) in producer.into_iter().chain(admin) {
        let r = call(&app, method.clone(), &path, Some(ADMIN), body).await;
        let status = r.status();
        // Past the check, the handlers answer: the report file of an `add` task is a 404,
        // retrying a task that was just revoked works, revoking a revoked workflow is a 409.
        assert!(
            !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) && !status.is_server_error(),
            "{method} {path}: {status} {:?}",
            r.text().await
        );
    }
    let record: Value = call(&app, Method::GET, &format!("/tasks/{task}"), Some(ADMIN), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record["state"], "PENDING", "revoked, then retried by the admin");
    let r = call(&app, Method::GET, "/metrics", Some(ADMIN), None).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("celeriac_queue_enqueued_total"));
}

#[tokio::test]
async fn probes_the_spec_and_the_docs_stay_open() {
    let app = with_tokens().await;
    for path in ["/healthz", "/readyz", "/openapi.json", "/docs", "/docs/"] {
        let r = call(&app, Method::GET, path, None, None).await;
        assert_eq!(r.status(), 200, "{path}");
    }
    let spec: Value = call(&app, Method::GET, "/openapi.json", None, None).await.json().await.unwrap();
    assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer", "{spec}");
    assert_eq!(spec["paths"]["/tasks"]["post"]["security"], json!([{"bearer": []}]));
    assert_eq!(spec["paths"]["/metrics"]["get"]["security"], json!([{"bearer": []}]));
    assert!(spec["paths"]["/metrics"]["get"]["responses"]["403"].is_object());
    assert!(spec["paths"]["/tasks"]["post"]["responses"]["401"].is_object());
    assert!(spec["paths"]["/healthz"]["get"].get("security").is_none());
    // An unknown route is a plain 404, with or without a token.
    assert_eq!(call(&app, Method::GET, "/nope", None, None).await.status(), 404);
}

#[tokio::test]
async fn on_loopback_without_tokens_everything_is_open() {
    let app = TestApp::spawn().await;
    assert!(app.settings.auth.is_empty());
    let id = app.enqueue("noop", json!(null)).await;
    assert_eq!(app.get(&format!("/tasks/{id}")).await.status(), 200);
    assert_eq!(app.post_json(&format!("/tasks/{id}/revoke"), &json!({})).await.status(), 200);
    assert_eq!(app.get("/metrics").await.status(), 200);
}

#[tokio::test]
async fn without_tokens_the_gateway_refuses_to_start_on_a_public_address() {
    for bind in ["0.0.0.0:0", "[::]:0"] {
        let mut settings = GatewaySettings::default();
        settings.http.bind = bind.parse().unwrap();
        let error = match celeriac_api::Application::build(settings, CancellationToken::new()).await {
            Ok(_) => panic!("started on {bind} without tokens"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains("refusing to start") && error.contains("no API tokens"), "{error}");
        assert!(error.contains("CELERIAC__AUTH__ADMIN_TOKENS"), "says how to fix it: {error}");
    }
}
