//! Remote (pushed) task types against a real HTTP endpoint started by the test (axum on a
//! free loopback port): the signed call, success, each failure class and its retry decision,
//! `Retry-After`, a timeout, a refused connection, an oversized answer, a redirect to another
//! host, progress through `progress_url`, and a lease kept alive through a call longer than it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use celeriac::signing::{DEFAULT_TOLERANCE, SIGNATURE_HEADER, verify};
use serde_json::{Value, json};

use crate::common::TestApp;

const SECRET: &str = "a-test-secret-of-some-length";

/// What the endpoint saw: each call's body, by path, and whether its signature verified.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<HashMap<String, Vec<Call>>>>);

/// One call's body and whether its signature verified.
type Call = (Value, bool);

impl Seen {
    fn calls(&self, path: &str) -> Vec<Call> {
        self.0.lock().unwrap().get(path).cloned().unwrap_or_default()
    }
}

/// The endpoint: `/{behaviour}`; every call is recorded with its signature check.
async fn endpoint(State(seen): State<Seen>, Path(behaviour): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let now = chrono::Utc::now().timestamp();
    let signed = verify(SECRET.as_bytes(), signature, &body, now, DEFAULT_TOLERANCE).is_ok();
    let call: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = {
        let mut all = seen.0.lock().unwrap();
        let list = all.entry(behaviour.clone()).or_default();
        list.push((call.clone(), signed));
        list.len()
    };
    match behaviour.as_str() {
        "echo" => axum::Json(json!({"got": call["args"], "attempt": call["attempt"]})).into_response(),
        "empty" => StatusCode::NO_CONTENT.into_response(),
        "not-found" => (StatusCode::NOT_FOUND, "x".repeat(5000)).into_response(),
        "unavailable" => (StatusCode::SERVICE_UNAVAILABLE, "down for now").into_response(),
        "timeout-then-ok" if n == 1 => (StatusCode::REQUEST_TIMEOUT, "slow").into_response(),
        "limited-then-ok" if n == 1 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "wait").into_response(),
        "timeout-then-ok" | "limited-then-ok" => axum::Json(json!({"n": n})).into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            axum::Json(json!("late")).into_response()
        }
        "longer-than-the-lease" => {
            tokio::time::sleep(Duration::from_secs(7)).await;
            axum::Json(json!("done")).into_response()
        }
        "big" => axum::Json(json!({"blob": "y".repeat(4000)})).into_response(),
        "elsewhere" => (StatusCode::TEMPORARY_REDIRECT, [("location", "http://localhost:9/steal")]).into_response(),
        "progress" => {
            let url = call["progress_url"].as_str().unwrap_or_default().to_owned();
            let reply = reqwest::Client::new()
                .post(url)
                .json(&json!({"current": 1, "total": 2, "message": "halfway"}))
                .send()
                .await;
            let status = reply.map(|r| r.status().as_u16()).unwrap_or(0);
            axum::Json(json!({"progress_status": status})).into_response()
        }
        _ => StatusCode::IM_A_TEAPOT.into_response(),
    }
}

/// The endpoint on a free port; its base URL and what it saw.
async fn start_endpoint() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new().route("/{behaviour}", post(endpoint)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// A gateway, a worker (with the gateway's URL for progress) and the endpoint.
async fn setup() -> (TestApp, String, Seen) {
    let app = TestApp::spawn().await;
    let gateway = app.address.clone();
    app.start_worker_with(celeriac_worker::Registry::new(), |c| c.gateway_url = Some(gateway))
        .await;
    let (base, seen) = start_endpoint().await;
    (app, base, seen)
}

/// Declares `name` as a remote task posting to `url` through the admin API.
async fn declare(app: &TestApp, name: &str, url: &str, extra: Value) {
    let mut body = json!({"url": url, "secret": SECRET, "queue": "default",
        "options": {"max_retries": 2, "retry_delay": 0.1, "retry_backoff": false, "retry_jitter": false}});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let response = app
        .client
        .put(app.url(&format!("/task-types/{name}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{:?}", response.text().await);
}

#[tokio::test]
async fn a_remote_task_is_posted_signed_and_its_json_answer_is_the_result() {
    let (app, base, seen) = setup().await;
    declare(&app, "remote-echo", &format!("{base}/echo"), json!({})).await;
    let listed: Value = app.get("/task-types").await.json().await.unwrap();
    assert_eq!(listed["task_types"][0]["name"], "remote-echo");
    assert!(!listed.to_string().contains(SECRET), "the secret is never shown: {listed}");
    let id = app.enqueue("remote-echo", json!({"x": [1, 2]})).await;
    let done = app.wait_terminal(&id).await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    assert_eq!(done["result"], json!({"got": {"x": [1, 2]}, "attempt": 1}));
    let calls = seen.calls("echo");
    assert_eq!(calls.len(), 1);
    let (call, signed) = &calls[0];
    assert!(signed, "the signature verifies with the shared secret");
    assert_eq!(
        (call["id"].as_str(), call["task"].as_str(), call["delivery"].as_u64()),
        (Some(id.as_str()), Some("remote-echo"), Some(1))
    );
    assert!(
        call["progress_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/runs/", app.address))
    );

    declare(&app, "empty", &format!("{base}/empty"), json!({})).await;
    let id = app.enqueue("empty", json!({})).await;
    let done = app.wait_terminal(&id).await;
    assert_eq!((done["state"].as_str(), done["result"].clone()), (Some("SUCCESS"), Value::Null));
}

#[tokio::test]
async fn each_failure_class_gets_its_retry_decision() {
    let (app, base, seen) = setup().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let cases = [
        ("unavailable", format!("{base}/unavailable"), "FAILURE", "HttpStatus", true, 3),
        ("not-found", format!("{base}/not-found"), "FAILURE", "HttpStatus", false, 1),
        ("timeout-then-ok", format!("{base}/timeout-then-ok"), "SUCCESS", "", true, 2),
        (
            "refused",
            format!("http://127.0.0.1:{closed}/x"),
            "FAILURE",
            "ConnectionFailed",
            true,
            0,
        ),
        ("elsewhere", format!("{base}/elsewhere"), "FAILURE", "HttpStatus", false, 1),
    ];
    let mut ids = Vec::new();
    for (name, url, ..) in &cases {
        declare(&app, name, url, json!({})).await;
        ids.push(app.enqueue(name, json!({})).await);
    }
    for ((name, _, state, kind, retryable, calls), id) in cases.iter().zip(&ids) {
        let done = app.wait_terminal(id).await;
        assert_eq!(done["state"], *state, "{name}: {done}");
        if *state == "FAILURE" {
            assert_eq!(done["error"]["kind"], *kind, "{name}: {done}");
            assert_eq!(done["error"]["retryable"], *retryable, "{name}: {done}");
            let attempts = if *retryable { 3 } else { 1 };
            assert_eq!(done["attempt"], attempts, "{name}: retried only when retryable: {done}");
        }
        assert_eq!(seen.calls(name).len(), *calls, "{name}");
    }
    let not_found = app.wait_terminal(&ids[1]).await;
    let message = not_found["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("HTTP 404: xxx"), "{message}");
    assert!(message.len() < 1100, "a bounded part of the body: {} bytes", message.len());
    assert!(seen.calls("steal").is_empty());
}

#[tokio::test]
async fn a_429_retry_waits_its_retry_after_not_the_backoff() {
    let (app, base, seen) = setup().await;
    // A backoff of a minute: only the Retry-After of 1 s can make the retry come this soon.
    let options = json!({"options": {"max_retries": 1, "retry_delay": 60, "retry_jitter": false}});
    declare(&app, "limited-then-ok", &format!("{base}/limited-then-ok"), options).await;
    let started = Instant::now();
    let id = app.enqueue("limited-then-ok", json!({})).await;
    let done = app.wait_terminal(&id).await;
    assert_eq!(
        (done["state"].as_str(), done["attempt"].as_u64()),
        (Some("SUCCESS"), Some(2)),
        "{done}"
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(20), "{took:?}");
    assert_eq!(seen.calls("limited-then-ok").len(), 2);
}

#[tokio::test]
async fn a_slow_endpoint_times_out_and_an_oversized_answer_fails() {
    let (app, base, _seen) = setup().await;
    let once = json!({"options": {"max_retries": 0}});
    let mut slow = once.clone();
    slow["timeout"] = json!(0.5);
    declare(&app, "slow", &format!("{base}/slow"), slow).await;
    let mut big = once.clone();
    big["max_answer_bytes"] = json!(1000);
    declare(&app, "big", &format!("{base}/big"), big).await;
    let slow = app.enqueue("slow", json!({})).await;
    let big = app.enqueue("big", json!({})).await;
    let done = app.wait_terminal(&slow).await;
    assert_eq!(
        (done["error"]["kind"].as_str(), done["error"]["retryable"].as_bool()),
        (Some("Timeout"), Some(true)),
        "{done}"
    );
    let done = app.wait_terminal(&big).await;
    assert_eq!(
        (done["error"]["kind"].as_str(), done["error"]["retryable"].as_bool()),
        (Some("AnswerTooLarge"), Some(false)),
        "{done}"
    );
}

#[tokio::test]
async fn the_endpoint_reports_progress_with_its_run_token() {
    let (app, base, _seen) = setup().await;
    declare(&app, "progress", &format!("{base}/progress"), json!({})).await;
    let id = app.enqueue("progress", json!({})).await;
    let done = app.wait_terminal(&id).await;
    assert_eq!(done["result"], json!({"progress_status": 200}), "{done}");
    assert_eq!(done["progress"], json!({"current": 1, "total": 2, "message": "halfway"}));
}

#[tokio::test]
async fn a_call_longer_than_the_lease_keeps_its_lease_and_runs_once() {
    // The worker's lease is 5 s; the call lasts 7 s. A second worker reaps all along.
    let (app, base, seen) = setup().await;
    app.start_worker(celeriac_worker::Registry::new()).await;
    declare(
        &app,
        "longer-than-the-lease",
        &format!("{base}/longer-than-the-lease"),
        json!({"timeout": 30}),
    )
    .await;
    let id = app.enqueue("longer-than-the-lease", json!({})).await;
    let done = app.wait_terminal(&id).await;
    assert_eq!(
        (done["state"].as_str(), done["deliveries"].as_u64()),
        (Some("SUCCESS"), Some(1)),
        "{done}"
    );
    assert_eq!(seen.calls("longer-than-the-lease").len(), 1, "never delivered twice");
}

#[tokio::test]
async fn a_bad_task_type_is_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({"url": "ftp://x", "secret": SECRET}), "url"),
        (json!({"url": "http://x", "secret": "short"}), "secret"),
        (json!({"url": "http://x", "secret": SECRET, "timeout": 0}), "timeout"),
        (json!({"url": "http://x", "secret": SECRET, "queue": "a b"}), "queue"),
    ] {
        let response = app.client.put(app.url("/task-types/t")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["error"]["field"], field, "{reply}");
    }
    let response = app
        .client
        .put(app.url("/task-types/t"))
        .json(&json!({"url": "http://x", "secret": SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = app
        .client
        .put(app.url("/task-types/t"))
        .json(&json!({"url": "http://y", "secret": SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.delete("/task-types/t").await.status(), 204);
    assert_eq!(app.delete("/task-types/t").await.status(), 404);
}

#[tokio::test]
async fn a_task_type_declared_in_the_settings_is_published_at_start() {
    let declared: celeriac::remote::RemoteTaskType = serde_json::from_value(json!({
        "url": "http://127.0.0.1:9/run", "secret": SECRET, "queue": "images", "timeout": 5
    }))
    .unwrap();
    let app = TestApp::spawn_with(|s| {
        s.common.remote_tasks.insert("from_settings".into(), declared);
    })
    .await;
    let shown: Value = app.get("/task-types/from_settings").await.json().await.unwrap();
    assert_eq!(
        (shown["queue"].as_str(), shown["timeout"].as_f64()),
        (Some("images"), Some(5.0)),
        "{shown}"
    );
    let id = app.enqueue("from_settings", json!({})).await;
    assert!(id.starts_with("images-"), "the gateway routes it to its queue: {id}");
}

/// A TLS listener for `axum::serve`: a TCP accept, then the handshake (a failed one is
/// skipped, as a client that does not trust the certificate hangs up).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// The endpoint over `https://`, with the server certificate of `certs` (for 127.0.0.1).
async fn start_tls_endpoint(certs: &celeriac_testkit::TestCertificates) -> (String, Seen) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(&certs.server_cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&certs.server_key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let seen = Seen::default();
    let app = Router::new().route("/{behaviour}", post(endpoint)).with_state(seen.clone());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", tcp.local_addr().unwrap());
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

#[tokio::test]
async fn an_https_endpoint_of_a_trusted_ca_is_called_and_one_of_another_ca_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = celeriac_testkit::TestCertificates::generate(dir.path(), "trusted");
    let other = celeriac_testkit::TestCertificates::generate(dir.path(), "other");
    let app = TestApp::spawn().await;
    let ca = trusted.ca_cert.clone();
    app.start_worker_with(celeriac_worker::Registry::new(), |c| c.remote_ca_file = Some(ca))
        .await;
    let (base, seen) = start_tls_endpoint(&trusted).await;
    declare(&app, "remote-tls", &format!("{base}/echo"), json!({})).await;
    let id = app.enqueue("remote-tls", json!({"x": 1})).await;
    let done = app.wait_terminal(&id).await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    assert_eq!(done["result"], json!({"got": {"x": 1}, "attempt": 1}));
    assert!(seen.calls("echo")[0].1, "signed, over TLS");

    // A certificate from a CA the worker does not trust: no call reaches the endpoint, and
    // the task fails after its retries (a failed handshake is a connection error).
    let (base, seen) = start_tls_endpoint(&other).await;
    declare(&app, "remote-untrusted", &format!("{base}/echo"), json!({})).await;
    let id = app.enqueue("remote-untrusted", json!({})).await;
    let done = app.wait_terminal(&id).await;
    assert_eq!(done["state"], "FAILURE", "{done}");
    assert!(seen.calls("echo").is_empty(), "nothing was sent to an untrusted endpoint");
}
