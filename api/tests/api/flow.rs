//! Flow control through the gateway: a thousand concurrent identical calls of a unique task
//! create one task (the others are answered with its id, marked `duplicate`); the lock ends
//! when the task finished, or holds for the whole period as a throttle; bad flow options are
//! refused with 422 naming the field; a task's priority reaches its record; a debounced burst
//! runs once, with the last call's arguments, after the burst. Queue limits: bad ones are
//! refused naming the field; a concurrency cap set through the API holds with a worker, and
//! `GET /queues`, `GET /tasks/{id}` and `/metrics` show why tasks wait; limits from the settings
//! are set at start.

use std::time::Duration;

use celeriac_testkit::eventually;
use serde_json::{Value, json};

use crate::common::{TestApp, test_registry};

/// The `default` queue as `GET /queues` shows it.
async fn default_queue(app: &TestApp) -> Value {
    let queues: Value = app.get("/queues").await.json().await.unwrap();
    let list = queues
        .as_array()
        .or_else(|| queues["queues"].as_array())
        .cloned()
        .unwrap_or_default();
    list.into_iter()
        .find(|q| q["name"] == "default")
        .expect("the default queue is listed")
}

async fn post(app: &TestApp, body: &Value) -> Value {
    let response = app.post_json("/tasks", body).await;
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_identical_calls_create_one_task() {
    let app = TestApp::spawn().await;
    let body = json!({"task": "echo", "args": ["report", 42], "unique_for": 60});
    let calls = (0..1000).map(|_| {
        let (client, url, body) = (app.client.clone(), app.url("/tasks"), body.clone());
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap() })
    });
    let mut answers = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        let response = call.await.unwrap();
        assert_eq!(response.status(), 202);
        answers.push(response.json::<Value>().await.unwrap());
    }
    let first = answers[0]["task_id"].clone();
    assert!(
        answers.iter().all(|a| a["task_id"] == first),
        "every call answered with the one task"
    );
    let created = answers.iter().filter(|a| a.get("duplicate").is_none()).count();
    assert_eq!(created, 1, "one call created it; the others say duplicate");
    let queue = default_queue(&app).await;
    assert_eq!(queue["pending"], 1);
    assert_eq!(queue["enqueued_total"], 1);
    // Other arguments, or another unique_key, are another task.
    let other = post(&app, &json!({"task": "echo", "args": ["report", 43], "unique_for": 60})).await;
    assert_ne!(other["task_id"], first);
    assert!(other.get("duplicate").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_lock_ends_when_the_task_finished_unless_it_is_a_throttle() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let unique = json!({"task": "echo", "args": [1], "unique_for": 60, "unique_key": "user-7"});
    let first = post(&app, &unique).await;
    let id = first["task_id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(30), "the unique task succeeds", || async {
        let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.ok()?;
        (record["state"] == "SUCCESS").then_some(())
    })
    .await;
    // The worker released the lock after storing the outcome: a new call is a new task.
    let again = eventually(Duration::from_secs(10), "the lock is released", || async {
        let answer = post(&app, &unique).await;
        (answer["task_id"] != first["task_id"]).then_some(answer)
    })
    .await;
    assert!(again.get("duplicate").is_none());

    let throttle = json!({"task": "echo", "args": [2], "unique_for": 60, "unique_until": "period"});
    let first = post(&app, &throttle).await;
    let id = first["task_id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(30), "the throttled task succeeds", || async {
        let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.ok()?;
        (record["state"] == "SUCCESS").then_some(())
    })
    .await;
    let later = post(&app, &throttle).await;
    assert_eq!(later["task_id"], first["task_id"], "one run per key per period");
    assert_eq!(later["duplicate"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debounced_burst_runs_once_with_the_last_arguments_after_the_burst() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let call = |n: u32| json!({"task": "echo", "args": {"n": n}, "debounce": 0.6, "debounce_key": "user-7"});
    let first = post(&app, &call(0)).await;
    assert_eq!((first["state"].as_str(), first.get("duplicate")), (Some("SCHEDULED"), None));
    let id = first["task_id"].as_str().unwrap().to_owned();
    for n in 1..=4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let merged = post(&app, &call(n)).await;
        assert_eq!(merged["task_id"], first["task_id"], "call {n} names the burst's task");
        assert_eq!((merged["state"].as_str(), &merged["duplicate"]), (Some("SCHEDULED"), &json!(true)));
    }
    let record: Value = eventually(Duration::from_secs(30), "the burst's task succeeds", || async {
        let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.ok()?;
        (record["state"] == "SUCCESS").then_some(record)
    })
    .await;
    assert_eq!(record["args"], json!({"n": 4}), "the last call's arguments");
    let listed: Value = app.get("/tasks?task=echo").await.json().await.unwrap();
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 1, "one task for the burst: {listed}");
    // After the run, a call starts a new burst.
    let next = post(&app, &call(5)).await;
    assert_ne!(next["task_id"], first["task_id"]);
}

#[tokio::test]
async fn bad_flow_options_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    for (bad, field) in [
        (json!({"priority": 10}), "priority"),
        (json!({"priority": -1}), "priority"),
        (json!({"unique_for": 0}), "unique_for"),
        (json!({"unique_key": ""}), "unique_key"),
        (json!({"unique_for": 5, "unique_until": "forever"}), "unique_until"),
        (json!({"debounce": 0}), "debounce"),
        (json!({"debounce": "soon"}), "debounce"),
        (json!({"debounce": 1, "unique_for": 5}), "debounce"),
        (json!({"debounce": 1, "debounce_key": ""}), "debounce_key"),
        (json!({"limit_key": ""}), "limit_key"),
    ] {
        let mut body = json!({"task": "noop"});
        body.as_object_mut().unwrap().extend(bad.as_object().unwrap().clone());
        let response = app.post_json("/tasks", &body).await;
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["field"], json!(field), "{body}: {error}");
    }
}

#[tokio::test]
async fn a_priority_reaches_the_record_and_its_queue_counts_it_pending() {
    let app = TestApp::spawn().await;
    let answer = post(&app, &json!({"task": "noop", "priority": 7})).await;
    let record: Value = app
        .get(&format!("/tasks/{}", answer["task_id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record["options"]["priority"], 7);
    let queue = default_queue(&app).await;
    assert_eq!(queue["pending"], 1);
}

async fn put_limits(app: &TestApp, queue: &str, body: Value) -> (reqwest::StatusCode, Value) {
    let response = app
        .client
        .put(app.url(&format!("/queues/{queue}/limits")))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn bad_queue_limits_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({"rate": "100/fortnight"}), "rate"),
        (json!({"rate": "0/s"}), "rate"),
        (json!({"rate": "10/s", "burst": 0}), "burst"),
        (json!({"burst": 5}), "burst"),
        (json!({"concurrency": 0}), "concurrency"),
        (json!({"concurrency": -1}), "concurrency"),
        (json!({"key_rate": "5/fortnight"}), "key_rate"),
        (json!({"key_burst": 2}), "key_burst"),
        (json!({"key_concurrency": 0}), "key_concurrency"),
    ] {
        let (status, answer) = put_limits(&app, "default", body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    // A sequence of the fields is not an object (serde's derived structs would take it).
    let (status, answer) = put_limits(&app, "default", json!([null, null])).await;
    assert_eq!(
        (status.as_u16(), answer["error"]["field"].as_str()),
        (422, Some("body")),
        "{answer}"
    );
    let (status, answer) = put_limits(&app, "default~1", json!({"concurrency": 2})).await;
    assert_eq!(
        (status.as_u16(), answer["error"]["field"].as_str()),
        (422, Some("queue")),
        "{answer}"
    );
    let default = celeriac::QueueName::parse("default").unwrap();
    assert!(app.broker.limits(&default).await.unwrap().is_none(), "nothing was set");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_cap_set_through_the_api_holds_and_shows_why_tasks_wait() {
    let app = TestApp::spawn().await;
    let (status, queue) = put_limits(&app, "default", json!({"concurrency": 1, "rate": "600/min"})).await;
    assert_eq!(status, 200, "{queue}");
    let limits = &queue["limits"];
    assert_eq!(
        (&limits["concurrency"], &limits["rate"], &limits["burst"], &limits["source"]),
        (&json!(1), &json!("600/min"), &json!(1), &json!("api"))
    );
    let ids: Vec<String> = futures::future::join_all((0..3).map(|_| app.enqueue("sleep", json!({"ms": 1500})))).await;
    app.start_worker(test_registry()).await;
    // One runs; the other two wait, held back by the cap, and say so.
    let waiting = eventually(Duration::from_secs(10), "one task runs and the others are held", || async {
        let queue = default_queue(&app).await;
        (queue["limits"]["running"] == 1 && queue["limits"]["held"] == "concurrency").then_some(())?;
        for id in &ids {
            let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.ok()?;
            if record["state"] == "PENDING" {
                return Some(record);
            }
        }
        None
    })
    .await;
    let held = waiting["held"].as_str().unwrap_or_default();
    assert!(held.contains("concurrency cap"), "{waiting}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for line in [
        "celeriac_queue_concurrency_in_use{queue=\"default\"} 1",
        "celeriac_queue_concurrency_cap{queue=\"default\"} 1",
        "celeriac_queue_held{queue=\"default\",reason=\"concurrency\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("celeriac_queue_rate_tokens{queue=\"default\"}"), "{metrics}");
    // They still all run, one after the other.
    let mut spans = Vec::new();
    for id in &ids {
        let record = app.wait_terminal(id).await;
        assert_eq!(record["state"], "SUCCESS", "{record}");
        spans.push((
            record["started_at"].as_str().unwrap().to_owned(),
            record["finished_at"].as_str().unwrap().to_owned(),
        ));
    }
    spans.sort();
    assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "one at a time: {spans:?}");
    let response = app.delete("/queues/default/limits").await;
    assert_eq!(response.status(), 200);
    assert!(response.json::<Value>().await.unwrap()["limits"].is_null());
}

#[tokio::test]
async fn limits_from_the_settings_are_set_at_start_and_shown() {
    let app = TestApp::spawn_with(|s| {
        let limits = celeriac::broker::QueueLimits {
            rate: Some("100/s".into()),
            ..Default::default()
        };
        s.tasks.limits.insert(celeriac::QueueName::parse("default").unwrap(), limits);
    })
    .await;
    app.enqueue("noop", json!(null)).await;
    let limits = default_queue(&app).await["limits"].clone();
    assert_eq!(
        (&limits["rate"], &limits["burst"], &limits["source"], &limits["tokens"]),
        (&json!("100/s"), &json!(5), &json!("settings"), &json!(5)),
        "{limits}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_cap_runs_one_task_per_customer_at_a_time_and_says_why_the_others_wait() {
    let app = TestApp::spawn().await;
    let (status, queue) = put_limits(&app, "default", json!({"key_concurrency": 1})).await;
    assert_eq!(status, 200, "{queue}");
    let call = |customer: &str| json!({"task": "sleep", "args": {"ms": 1200}, "limit_key": customer});
    let mut ids = Vec::new();
    for customer in ["acme", "acme", "globex"] {
        ids.push(post(&app, &call(customer)).await["task_id"].as_str().unwrap().to_owned());
    }
    app.start_worker(test_registry()).await;
    // acme's second task waits for acme's slot; globex's runs beside acme's first.
    let waiting = eventually(Duration::from_secs(10), "one of acme's tasks is parked", || async {
        for id in &ids[..2] {
            let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.ok()?;
            if record["held"].is_string() {
                return Some(record);
            }
        }
        None
    })
    .await;
    assert_eq!(waiting["state"], "PENDING");
    assert!(waiting["held"].as_str().unwrap().contains("\"acme\""), "{waiting}");
    let globex: Value = app.get(&format!("/tasks/{}", ids[2])).await.json().await.unwrap();
    assert!(globex["held"].is_null(), "another key is not held: {globex}");
    assert_eq!(default_queue(&app).await["limits"]["parked"], 1);
    let records: Vec<Value> = futures::future::join_all(ids.iter().map(|id| app.wait_terminal(id))).await;
    assert!(records.iter().all(|r| r["state"] == "SUCCESS"), "{records:?}");
    let ms = |record: &Value, field: &str| {
        let at = record[field].as_str().unwrap_or_else(|| panic!("{field}: {record}"));
        chrono::DateTime::parse_from_rfc3339(at).unwrap().timestamp_millis()
    };
    let mut acme = [&records[0], &records[1]];
    acme.sort_by_key(|r| ms(r, "started_at"));
    let times = |r: &Value| (ms(r, "started_at"), ms(r, "finished_at"));
    let (first, second, globex) = (times(acme[0]), times(acme[1]), times(&records[2]));
    // One after the other: the second started once the first had run its 1,200 ms (two acme
    // tasks side by side would start together). The times are the worker's clock when it
    // built each call, and a start built just before the first's acknowledgement may run
    // after it in Redis, so the second's start may read up to a round trip before the first's
    // end: compared with the first's start, not its end.
    assert!(
        second.0 - first.0 >= 1_000,
        "acme's tasks one after the other: {first:?} {second:?}"
    );
    assert!(globex.0 < first.1, "globex ran beside acme: {globex:?} {first:?}");
}
