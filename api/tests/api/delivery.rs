//! Delivery semantics through the gateway with a real worker: retries, time limits, revoke,
//! countdown, expiry, dead letters.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestApp, test_registry};

async fn post_task(app: &TestApp, body: Value) -> String {
    let response = app.post_json("/tasks", &body).await;
    assert_eq!(response.status(), 202, "{body}");
    response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned()
}

async fn state_of(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/tasks/{id}")).await.json().await.unwrap()
}

async fn wait_for_state(app: &TestApp, id: &str, state: &str) -> Value {
    celeriac_testkit::eventually(Duration::from_secs(20), &format!("{id} reaches {state}"), || async {
        let record = state_of(app, id).await;
        (record["state"] == state).then_some(record)
    })
    .await
}

#[tokio::test]
async fn a_task_that_fails_twice_retries_then_succeeds() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = post_task(&app, json!({"task": "flaky", "args": {"fail_times": 2}})).await;
    let retrying = wait_for_state(&app, &id, "RETRY").await;
    assert_eq!(
        retrying["error"]["message"].as_str().map(|m| m.ends_with("fails")),
        Some(true),
        "{retrying}"
    );
    assert!(retrying["eta"].is_string(), "the next run time is shown: {retrying}");
    let done = app.wait_terminal(&id).await;
    assert_eq!(done["state"], "SUCCESS");
    assert_eq!((done["attempt"].as_u64(), done["result"]["attempt"].as_u64()), (Some(3), Some(3)));
}

#[tokio::test]
async fn per_call_retry_options_set_the_backoff() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let body = json!({"task": "flaky", "args": {"fail_times": 1}, "retry_delay": 30, "retry_backoff": false, "retry_jitter": false});
    let id = post_task(&app, body).await;
    let record = wait_for_state(&app, &id, "RETRY").await;
    let eta = chrono::DateTime::parse_from_rfc3339(record["eta"].as_str().unwrap()).unwrap();
    let failed_at = chrono::DateTime::parse_from_rfc3339(record["started_at"].as_str().unwrap()).unwrap();
    let delay = (eta - failed_at).num_milliseconds();
    assert!(
        (29_000..=31_000).contains(&delay),
        "a fixed 30 s delay without jitter, got {delay} ms"
    );
    assert_eq!(record["options"]["retry_delay"], 30.0);
}

#[tokio::test]
async fn retries_stop_when_the_budget_is_spent_and_permanent_errors_never_retry() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let spent = post_task(&app, json!({"task": "flaky", "args": {"fail_times": 5}, "max_retries": 1})).await;
    let record = app.wait_terminal(&spent).await;
    assert_eq!((record["state"].as_str(), record["attempt"].as_u64()), (Some("FAILURE"), Some(2)));
    let permanent = post_task(&app, json!({"task": "fail", "args": {"message": "bad input"}})).await;
    let record = app.wait_terminal(&permanent).await;
    assert_eq!(
        (record["state"].as_str(), record["attempt"].as_u64(), record["deliveries"].as_u64()),
        (Some("FAILURE"), Some(1), Some(1))
    );
}

#[tokio::test]
async fn a_hard_time_limit_stops_the_task_and_frees_its_slot() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let slow: Vec<String> =
        futures::future::join_all((0..4).map(|_| post_task(&app, json!({"task": "sleep", "args": {"ms": 60000}, "time_limit": 0.3}))))
            .await;
    for id in &slow {
        let record = app.wait_terminal(id).await;
        assert_eq!(
            (record["state"].as_str(), record["error"]["kind"].as_str()),
            (Some("FAILURE"), Some("TimeLimitExceeded")),
            "{record}"
        );
    }
    // All four slots of the worker were taken by the slow tasks; a new task still runs.
    let next = post_task(&app, json!({"task": "add", "args": [1, 2]})).await;
    assert_eq!(app.wait_terminal(&next).await["result"], 3);
}

#[tokio::test]
async fn a_soft_time_limit_fires_the_tasks_cancellation_token() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = post_task(&app, json!({"task": "sleep", "args": {"ms": 60000}, "soft_time_limit": 0.3})).await;
    let record = app.wait_terminal(&id).await;
    assert_eq!(
        record["error"]["kind"], "Cancelled",
        "the task saw its token and stopped itself: {record}"
    );
}

#[tokio::test]
async fn revoking_a_queued_or_scheduled_task_means_it_never_starts() {
    let app = TestApp::spawn().await;
    let queued = post_task(&app, json!({"task": "echo", "args": 1})).await;
    let scheduled = post_task(&app, json!({"task": "echo", "args": 2, "countdown": 1})).await;
    assert_eq!(state_of(&app, &scheduled).await["state"], "SCHEDULED");
    for id in [&queued, &scheduled] {
        let response = app.post(&format!("/tasks/{id}/revoke")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["outcome"], "revoked");
    }
    app.start_worker(test_registry()).await;
    let marker = post_task(&app, json!({"task": "noop", "countdown": 1.5})).await;
    app.wait_terminal(&marker).await;
    for id in [&queued, &scheduled] {
        let record = state_of(&app, id).await;
        assert_eq!(
            (record["state"].as_str(), record["started_at"].as_str()),
            (Some("REVOKED"), None),
            "{record}"
        );
    }
    let again = app.post(&format!("/tasks/{queued}/revoke")).await;
    assert_eq!(again.status(), 409, "revoking a finished task is a conflict");
}

#[tokio::test]
async fn revoking_a_running_task_cancels_it_and_terminate_stops_it() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    for terminate in [false, true] {
        let id = post_task(&app, json!({"task": "sleep", "args": {"ms": 60000}})).await;
        wait_for_state(&app, &id, "STARTED").await;
        let response = app
            .post_json(&format!("/tasks/{id}/revoke"), &json!({"terminate": terminate}))
            .await;
        assert_eq!(response.json::<Value>().await.unwrap()["outcome"], "signalled");
        let record = app.wait_terminal(&id).await;
        assert_eq!(
            (record["state"].as_str(), record["error"]["kind"].as_str()),
            (Some("REVOKED"), Some("Revoked")),
            "{record}"
        );
    }
}

#[tokio::test]
async fn a_countdown_task_is_scheduled_then_runs() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = post_task(&app, json!({"task": "add", "args": [2, 3], "countdown": 1})).await;
    let scheduled = state_of(&app, &id).await;
    assert_eq!(scheduled["state"], "SCHEDULED");
    assert!(scheduled["eta"].is_string());
    assert_eq!(app.wait_terminal(&id).await["result"], 5);
}

#[tokio::test]
async fn an_expired_task_is_revoked_and_never_runs() {
    let app = TestApp::spawn().await;
    let id = post_task(&app, json!({"task": "echo", "args": 1, "expires": 0.2})).await;
    let scheduled_past_expiry = post_task(&app, json!({"task": "echo", "args": 2, "countdown": 0.5, "expires": 0.3})).await;
    // Both expiries pass before any worker exists: the worker's clock (the test broker's,
    // shared with it) is a second ahead, so no wall-clock wait is needed.
    app.broker.clock().advance(Duration::from_secs(1));
    app.start_worker(test_registry()).await;
    for id in [&id, &scheduled_past_expiry] {
        let record = app.wait_terminal(id).await;
        assert_eq!(
            (
                record["state"].as_str(),
                record["error"]["kind"].as_str(),
                record["started_at"].as_str()
            ),
            (Some("REVOKED"), Some("Expired"), None),
            "{record}"
        );
    }
}

#[tokio::test]
async fn a_failed_task_is_dead_lettered_and_can_be_retried_with_a_fresh_budget() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let id = post_task(&app, json!({"task": "flaky", "args": {"fail_times": 2}, "max_retries": 0})).await;
    assert_eq!(app.wait_terminal(&id).await["state"], "FAILURE");
    let dead: Vec<String> = redis::AsyncCommands::zrange(
        &mut app.broker.connection(),
        app.broker.keys().dead(&celeriac::QueueName::parse("default").unwrap()),
        0,
        -1,
    )
    .await
    .unwrap();
    assert_eq!(dead.len(), 1);

    let pending = post_task(&app, json!({"task": "sleep", "args": {"ms": 60000}})).await;
    let conflict = app.post(&format!("/tasks/{pending}/retry")).await;
    assert_eq!(conflict.status(), 409);

    let response = app.post(&format!("/tasks/{id}/retry")).await;
    assert_eq!(response.json::<Value>().await.unwrap()["outcome"], "queued");
    // It ran again from attempt 1 (the retry count started over; its own budget is still 0).
    let record = celeriac_testkit::eventually(Duration::from_secs(20), "the retried run finishes", || async {
        let record = state_of(&app, &id).await;
        (record["deliveries"] == 2 && record["state"] == "FAILURE").then_some(record)
    })
    .await;
    assert_eq!(record["attempt"].as_u64(), Some(1), "{record}");
    let missing = app.post("/tasks/default-0193a1b2c3d4e5f60718293a4b5c6d7e/retry").await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_worker_never_holds_more_tasks_than_its_slots() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await; // concurrency 4
    let ids: Vec<String> = futures::future::join_all((0..12).map(|_| post_task(&app, json!({"task": "sleep", "args": {"ms": 200}})))).await;
    let queue = celeriac::QueueName::parse("default").unwrap();
    let worker = celeriac_testkit::eventually(Duration::from_secs(10), "the worker registers", || async {
        app.broker.live_workers().await.ok()?.first().map(|w| w.id.clone())
    })
    .await;
    // Claims overlap the previous batch's start, so sample the lease while the queue drains.
    let mut most = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        most = most.max(app.broker.leased(&queue, &worker).await.unwrap().len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(most > 0, "the worker took tasks");
    assert!(most <= 4, "{most} tasks leased to a worker with 4 slots");
    for id in &ids {
        assert_eq!(app.wait_terminal(id).await["state"], "SUCCESS");
    }
}
