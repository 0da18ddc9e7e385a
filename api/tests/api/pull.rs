//! The pull protocol against a real gateway and redis-server: claim, heartbeat, progress,
//! complete and fail through run tokens; a vanished worker's task comes back after its lease;
//! a stale token is refused with 409; racing pulls never share a task.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use celeriac::{QueueName, TaskOptions, TaskSpec};
use serde_json::{Value, json};

use crate::common::TestApp;

/// A gateway whose pull leases last `lease`, with the task type `resize` on queue `images`
/// (as a pull worker's deployment declares it).
async fn app(lease: Duration, options: TaskOptions) -> TestApp {
    let app = TestApp::spawn_with(|s| s.pull.lease = lease).await;
    let spec = TaskSpec {
        name: "resize".into(),
        queue: QueueName::parse("images").unwrap(),
        options,
    };
    app.broker.register_tasks(&[spec]).await.unwrap();
    app
}

async fn claim(app: &TestApp, query: &str) -> Value {
    let response = app.post(&format!("/queues/images/claim?{query}")).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    response.json().await.unwrap()
}

async fn run_call(app: &TestApp, token: &str, action: &str, body: Value) -> (u16, Value) {
    let response = app.post_json(&format!("/runs/{token}/{action}"), &body).await;
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn record(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/tasks/{id}")).await.json().await.unwrap()
}

#[tokio::test]
async fn a_pull_worker_claims_beats_reports_progress_and_completes() {
    let app = app(Duration::from_secs(30), TaskOptions::default()).await;
    let id = app.enqueue("resize", json!({"w": 64})).await;
    let claimed = claim(&app, "max=5&wait=5&worker=py-1").await;
    assert_eq!(claimed["worker"], "py-1");
    let tasks = claimed["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{claimed}");
    let task = &tasks[0];
    assert_eq!(task["id"], id.as_str());
    assert_eq!(task["task"], "resize");
    assert_eq!(task["args"], json!({"w": 64}));
    assert_eq!((task["attempt"].as_u64(), task["delivery"].as_u64()), (Some(1), Some(1)));
    let token = task["token"].as_str().unwrap();
    assert_eq!(record(&app, &id).await["state"], "STARTED");

    let (status, _) = run_call(&app, token, "heartbeat", json!({})).await;
    assert_eq!(status, 200);
    // Progress needs no bearer token (a remote endpoint reports with the token alone).
    let (status, _) = run_call(&app, token, "progress", json!({"current": 3, "total": 10, "message": "half"})).await;
    assert_eq!(status, 200);
    assert_eq!(
        record(&app, &id).await["progress"],
        json!({"current": 3, "total": 10, "message": "half"})
    );

    let workers: Value = app.get("/workers").await.json().await.unwrap();
    let me = workers["workers"].as_array().unwrap().iter().find(|w| w["id"] == "py-1");
    let me = me.unwrap_or_else(|| panic!("the pull worker is listed: {workers}"));
    assert_eq!((me["host"].as_str(), me["queues"].clone()), (Some("pull"), json!(["images"])));
    assert_eq!(me["running"], 1);

    let (status, body) = run_call(&app, token, "complete", json!({"result": {"url": "/img/1.png"}})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("SUCCESS")));
    let done = record(&app, &id).await;
    assert_eq!(
        (done["state"].as_str(), done["result"].clone()),
        (Some("SUCCESS"), json!({"url": "/img/1.png"}))
    );
    assert_eq!(done["worker"], "py-1");
    // The run is over: its token writes nothing more.
    let (status, body) = run_call(&app, token, "complete", json!({"result": 2})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let (status, _) = run_call(&app, token, "heartbeat", json!({})).await;
    assert_eq!(status, 409);
    assert_eq!(record(&app, &id).await["result"], json!({"url": "/img/1.png"}));
}

#[tokio::test]
async fn a_forged_or_garbled_token_is_not_found_and_bad_claims_name_the_field() {
    let app = app(Duration::from_secs(30), TaskOptions::default()).await;
    app.enqueue("resize", json!({})).await;
    let token = claim(&app, "wait=5").await["tasks"][0]["token"].as_str().unwrap().to_owned();
    let (body, mac) = token.split_once('.').unwrap();
    let flipped = format!("{body}.{}{}", if mac.starts_with('0') { "1" } else { "0" }, &mac[1..]);
    for bad in [flipped.as_str(), "nonsense", "00.00"] {
        let (status, reply) = run_call(&app, bad, "complete", json!({})).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (404, Some("not_found")), "{bad}");
    }
    for (query, field) in [
        ("max=0", "max"),
        ("max=1001", "max"),
        ("wait=-1", "wait"),
        ("wait=999", "wait"),
        ("worker=a%20b", "worker"),
    ] {
        let response = app.post(&format!("/queues/images/claim?{query}")).await;
        assert_eq!(response.status(), 422, "{query}");
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["error"]["field"], field, "{query}: {reply}");
    }
}

#[tokio::test]
async fn an_empty_claim_answers_after_its_wait_and_a_waiting_claim_wakes_on_enqueue() {
    let app = app(Duration::from_secs(30), TaskOptions::default()).await;
    let started = Instant::now();
    let empty = claim(&app, "wait=0.5&worker=idle").await;
    assert_eq!(empty["tasks"], json!([]));
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "it waited: {:?}",
        started.elapsed()
    );

    let waiting = {
        let client = app.client.clone();
        let url = app.url("/queues/images/claim?wait=20&worker=w");
        tokio::spawn(async move { client.post(url).send().await.unwrap().json::<Value>().await.unwrap() })
    };
    let started = Instant::now();
    let id = app.enqueue("resize", json!({})).await;
    let got = waiting.await.unwrap();
    assert_eq!(got["tasks"][0]["id"], id.as_str(), "{got}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken by the enqueue: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_failure_retries_under_the_task_policy_then_fails_for_good() {
    let options = TaskOptions {
        max_retries: Some(1),
        retry_delay: Some(0.2),
        retry_backoff: Some(false),
        retry_jitter: Some(false),
        ..Default::default()
    };
    let app = app(Duration::from_secs(30), options).await;
    let id = app.enqueue("resize", json!({})).await;
    let first = claim(&app, "wait=5").await;
    let token = first["tasks"][0]["token"].as_str().unwrap();
    let (status, body) = run_call(&app, token, "fail", json!({"message": "disk busy", "retryable": true})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("RETRY")), "{body}");
    assert_eq!(record(&app, &id).await["state"], "RETRY");
    // The gateway promotes the due retry itself: no native worker serves this queue.
    let second = claim(&app, "wait=10").await;
    let task = &second["tasks"][0];
    assert_eq!(
        (task["id"].as_str(), task["attempt"].as_u64()),
        (Some(id.as_str()), Some(2)),
        "{second}"
    );
    let (status, body) = run_call(
        &app,
        task["token"].as_str().unwrap(),
        "fail",
        json!({"message": "still busy", "kind": "Busy"}),
    )
    .await;
    assert_eq!((status, body["state"].as_str()), (200, Some("FAILURE")), "{body}");
    let done = record(&app, &id).await;
    assert_eq!(done["state"], "FAILURE");
    assert_eq!(done["error"], json!({"kind": "Busy", "message": "still busy", "retryable": true}));

    let id = app.enqueue("resize", json!({})).await;
    let token = claim(&app, "wait=5").await["tasks"][0]["token"].as_str().unwrap().to_owned();
    let (_, body) = run_call(&app, &token, "fail", json!({"message": "bad image", "retryable": false})).await;
    assert_eq!(body["state"], "FAILURE", "a permanent failure does not retry");
    assert_eq!(record(&app, &id).await["attempt"], 1);
}

#[tokio::test]
async fn a_vanished_workers_task_comes_back_after_its_lease_and_its_stale_token_gets_409() {
    let app = app(Duration::from_secs(2), TaskOptions::default()).await;
    let id = app.enqueue("resize", json!({})).await;
    let lost = claim(&app, "wait=5&worker=vanishes").await;
    let stale = lost["tasks"][0]["token"].as_str().unwrap().to_owned();
    // The first worker never beats again. Another one's long poll gets the task once the
    // lease has run out, as a new delivery.
    let started = Instant::now();
    let again = claim(&app, "wait=15&worker=survivor").await;
    let task = &again["tasks"][0];
    assert_eq!(
        (task["id"].as_str(), task["delivery"].as_u64()),
        (Some(id.as_str()), Some(2)),
        "{again}"
    );
    assert_eq!(task["attempt"], 1, "a redelivery after a crash is not a retry");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the lease ran out: {:?}",
        started.elapsed()
    );
    let late = [
        ("heartbeat", json!({})),
        ("complete", json!({"result": "late"})),
        ("fail", json!({"message": "late"})),
    ];
    for (action, body) in late {
        let (status, body) = run_call(&app, &stale, action, body).await;
        assert_eq!(status, 409, "{action}: {body}");
    }
    let (status, _) = run_call(&app, &stale, "progress", json!({"current": 1, "total": 2})).await;
    assert_eq!(status, 409);
    let (status, body) = run_call(&app, task["token"].as_str().unwrap(), "complete", json!({"result": "second"})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("SUCCESS")));
    let done = record(&app, &id).await;
    assert_eq!((done["result"].as_str(), done["deliveries"].as_u64()), (Some("second"), Some(2)));
}

#[tokio::test]
async fn a_beating_worker_keeps_its_task_past_the_lease() {
    let app = app(Duration::from_secs(2), TaskOptions::default()).await;
    let id = app.enqueue("resize", json!({})).await;
    let token = claim(&app, "wait=5&worker=beats").await["tasks"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let (status, _) = run_call(&app, &token, "heartbeat", json!({})).await;
        assert_eq!(status, 200);
        // Another worker's claim in the meantime also reaps expired leases: it must get nothing.
        let other = claim(&app, "wait=0.6&worker=other").await;
        assert_eq!(other["tasks"], json!([]), "the task stayed with its beating worker");
    }
    let (status, _) = run_call(&app, &token, "complete", json!({"result": 1})).await;
    assert_eq!(status, 200);
    assert_eq!(record(&app, &id).await["deliveries"], 1);
}

#[tokio::test]
async fn racing_pulls_never_share_a_task_and_one_token_completes_once() {
    let app = app(Duration::from_secs(30), TaskOptions::default()).await;
    let mut ids = HashSet::new();
    for i in 0..20 {
        ids.insert(app.enqueue("resize", json!({"i": i})).await);
    }
    let claims = (0..4).map(|w| {
        let client = app.client.clone();
        let url = app.url(&format!("/queues/images/claim?max=10&wait=1&worker=racer-{w}"));
        tokio::spawn(async move { client.post(url).send().await.unwrap().json::<Value>().await.unwrap() })
    });
    let mut seen = Vec::new();
    let mut tokens = Vec::new();
    for claim in claims {
        for task in claim.await.unwrap()["tasks"].as_array().unwrap() {
            seen.push(task["id"].as_str().unwrap().to_owned());
            tokens.push(task["token"].as_str().unwrap().to_owned());
        }
    }
    let distinct: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(distinct.len(), seen.len(), "no task went to two pulls");
    assert_eq!(distinct, ids, "every task was handed out");
    // The same run completed twice at once: exactly one wins.
    let token = &tokens[0];
    let (a, b) = tokio::join!(
        run_call(&app, token, "complete", json!({"result": "a"})),
        run_call(&app, token, "complete", json!({"result": "b"}))
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
}

#[tokio::test]
async fn a_run_past_its_hard_time_limit_is_ended_as_a_native_one() {
    let options = TaskOptions {
        time_limit: Some(1.0),
        ..Default::default()
    };
    let app = app(Duration::from_secs(30), options).await;
    let id = app.enqueue("resize", json!({})).await;
    let claimed = claim(&app, "wait=5").await;
    let task = &claimed["tasks"][0];
    assert!(task["deadline"].is_string(), "{claimed}");
    let token = task["token"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the limit itself is what is tested
    let (status, body) = run_call(&app, token, "complete", json!({"result": 1})).await;
    assert_eq!(status, 409, "{body}");
    let done = record(&app, &id).await;
    assert_eq!(
        (done["state"].as_str(), done["error"]["kind"].as_str()),
        (Some("FAILURE"), Some("TimeLimitExceeded"))
    );
}

#[tokio::test]
async fn a_pulled_result_over_the_limit_ends_the_run_in_failure_as_a_native_one() {
    let app = TestApp::spawn_with(|s| s.common.tasks.max_result_bytes = 100).await;
    let spec = TaskSpec {
        name: "resize".into(),
        queue: QueueName::parse("images").unwrap(),
        options: TaskOptions::default(),
    };
    app.broker.register_tasks(&[spec]).await.unwrap();
    let id = app.enqueue("resize", json!({"w": 64})).await;
    let claimed = claim(&app, "max=1&wait=5&worker=py-big").await;
    let token = claimed["tasks"][0]["token"].as_str().unwrap().to_owned();
    let (status, body) = run_call(&app, &token, "complete", json!({"result": "x".repeat(200)})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("FAILURE")), "{body}");
    let done = record(&app, &id).await;
    assert_eq!(done["state"], "FAILURE", "{done}");
    assert_eq!(done["error"]["kind"], "ResultTooLarge", "{done}");
}
