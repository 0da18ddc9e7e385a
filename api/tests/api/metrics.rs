//! `GET /metrics` after a known workload through the real worker: queue counters and depths
//! from Redis, per-task counters and histograms from the workers' heartbeats, workers online.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::common::{TestApp, test_registry};

/// `series -> value` of a Prometheus text exposition, e.g.
/// `celeriac_queue_pending{queue="default"} -> 0`.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {l:?}"));
            (series.to_owned(), value.parse().unwrap_or_else(|_| panic!("bad value in {l:?}")))
        })
        .collect()
}

async fn scrape(app: &TestApp) -> (String, BTreeMap<String, f64>) {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    let values = parse(&text);
    (text, values)
}

fn value(values: &BTreeMap<String, f64>, series: &str) -> Option<f64> {
    values.get(series).copied()
}

#[tokio::test]
async fn metrics_show_the_exact_counts_depths_and_histograms_of_a_known_workload() {
    let app = TestApp::spawn().await;
    let worker = app.start_worker(test_registry()).await;

    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(app.enqueue("add", json!([i, 1])).await);
    }
    for _ in 0..2 {
        ids.push(app.enqueue("fail", json!({"message": "boom"})).await);
    }
    ids.push(app.enqueue("flaky", json!({"fail_times": 1})).await);
    // Waiting: two for later on the worker's queue, two on a queue no worker consumes.
    for _ in 0..2 {
        let r = app.post_json("/tasks", &json!({"task": "noop", "countdown": 3600})).await;
        assert_eq!(r.status(), 202);
        let r = app.post_json("/tasks", &json!({"task": "noop", "queue": "idle"})).await;
        assert_eq!(r.status(), 202);
    }
    // Revoked while running.
    let sleeper = app.enqueue("sleep", json!({"ms": 20000})).await;
    celeriac_testkit::eventually(Duration::from_secs(10), "the sleeper starts", || async {
        let record: serde_json::Value = app.get(&format!("/tasks/{sleeper}")).await.json().await.unwrap();
        (record["state"] == "STARTED").then_some(())
    })
    .await;
    let r = app
        .post_json(&format!("/tasks/{sleeper}/revoke"), &json!({"terminate": true}))
        .await;
    assert_eq!(r.status(), 200);
    ids.push(sleeper);
    let mut states = Vec::new();
    for id in &ids {
        states.push(app.wait_terminal(id).await["state"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        states,
        ["SUCCESS", "SUCCESS", "SUCCESS", "FAILURE", "FAILURE", "SUCCESS", "REVOKED"]
    );

    // The workers' side arrives with their next heartbeat (a third of the 5 s lease).
    let values = celeriac_testkit::eventually(Duration::from_secs(15), "the worker's metrics arrive", || async {
        let (_, values) = scrape(&app).await;
        let arrived = value(&values, r#"celeriac_tasks_revoked_total{queue="default",task="sleep"}"#) == Some(1.0)
            && value(&values, r#"celeriac_tasks_succeeded_total{queue="default",task="flaky"}"#) == Some(1.0);
        arrived.then_some(values)
    })
    .await;

    let expected = [
        // From the queues' stats hashes and lists in Redis.
        (r#"celeriac_queue_enqueued_total{queue="default"}"#, 9.0),
        (r#"celeriac_queue_enqueued_total{queue="idle"}"#, 2.0),
        (r#"celeriac_queue_succeeded_total{queue="default"}"#, 4.0),
        (r#"celeriac_queue_failed_total{queue="default"}"#, 2.0),
        (r#"celeriac_queue_retried_total{queue="default"}"#, 1.0),
        (r#"celeriac_queue_revoked_total{queue="default"}"#, 1.0),
        (r#"celeriac_queue_succeeded_total{queue="idle"}"#, 0.0),
        (r#"celeriac_queue_pending{queue="default"}"#, 0.0),
        (r#"celeriac_queue_pending{queue="idle"}"#, 2.0),
        (r#"celeriac_queue_scheduled{queue="default"}"#, 2.0),
        (r#"celeriac_queue_scheduled{queue="idle"}"#, 0.0),
        (r#"celeriac_queue_dead{queue="default"}"#, 2.0),
        ("celeriac_workers_online", 1.0),
        // From the worker, per task.
        (r#"celeriac_tasks_started_total{queue="default",task="add"}"#, 3.0),
        (r#"celeriac_tasks_started_total{queue="default",task="fail"}"#, 2.0),
        (r#"celeriac_tasks_started_total{queue="default",task="flaky"}"#, 2.0),
        (r#"celeriac_tasks_started_total{queue="default",task="sleep"}"#, 1.0),
        (r#"celeriac_tasks_succeeded_total{queue="default",task="add"}"#, 3.0),
        (r#"celeriac_tasks_succeeded_total{queue="default",task="flaky"}"#, 1.0),
        (r#"celeriac_tasks_succeeded_total{queue="default",task="fail"}"#, 0.0),
        (r#"celeriac_tasks_failed_total{queue="default",task="fail"}"#, 2.0),
        (r#"celeriac_tasks_failed_total{queue="default",task="add"}"#, 0.0),
        (r#"celeriac_tasks_retried_total{queue="default",task="flaky"}"#, 1.0),
        (r#"celeriac_tasks_revoked_total{queue="default",task="sleep"}"#, 1.0),
        (r#"celeriac_tasks_failed_total{queue="default",task="sleep"}"#, 0.0),
        (r#"celeriac_task_run_seconds_count{queue="default",task="add"}"#, 3.0),
        (r#"celeriac_task_run_seconds_count{queue="default",task="fail"}"#, 2.0),
        (r#"celeriac_task_run_seconds_count{queue="default",task="flaky"}"#, 2.0),
        (r#"celeriac_task_run_seconds_bucket{queue="default",task="add",le="+Inf"}"#, 3.0),
        (r#"celeriac_task_run_seconds_bucket{queue="default",task="flaky",le="+Inf"}"#, 2.0),
        (r#"celeriac_task_wait_seconds_count{queue="default",task="add"}"#, 3.0),
        (r#"celeriac_task_wait_seconds_count{queue="default",task="flaky"}"#, 2.0),
        (r#"celeriac_task_wait_seconds_bucket{queue="default",task="fail",le="+Inf"}"#, 2.0),
    ];
    for (series, want) in expected {
        assert_eq!(value(&values, series), Some(want), "{series}");
    }
    // The sleeper ran for a while before the revoke stopped it; `add` takes no time at all.
    let sleep_run = value(&values, r#"celeriac_task_run_seconds_sum{queue="default",task="sleep"}"#).unwrap();
    assert!(sleep_run > 0.0 && sleep_run < 20.0, "{sleep_run}");
    assert_eq!(
        value(&values, r#"celeriac_task_run_seconds_bucket{queue="default",task="add",le="1"}"#),
        Some(3.0)
    );
    // Every bucket is there, cumulative, ending with all of them.
    let prefix = r#"celeriac_task_wait_seconds_bucket{queue="default",task="flaky",le=""#;
    let mut buckets: Vec<(f64, f64)> = values
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(prefix)?.trim_end_matches("\"}");
            Some((if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() }, *v))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(buckets.len(), celeriac::metrics::BUCKETS.len() + 1);
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last().unwrap().1, 2.0);

    // A stopped worker's counts stay (its final snapshot, then what this gateway kept of it).
    worker.cancel();
    let values = celeriac_testkit::eventually(Duration::from_secs(15), "the worker is gone", || async {
        let (_, values) = scrape(&app).await;
        (value(&values, "celeriac_workers_online") == Some(0.0)).then_some(values)
    })
    .await;
    assert_eq!(
        value(&values, r#"celeriac_tasks_succeeded_total{queue="default",task="add"}"#),
        Some(3.0)
    );
    let mut conn = app.broker.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(app.broker.keys().worker_metrics("*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "one snapshot per worker: {keys:?}");
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await.unwrap();
    let (_, values) = scrape(&app).await;
    assert_eq!(
        value(&values, r#"celeriac_tasks_succeeded_total{queue="default",task="add"}"#),
        Some(3.0),
        "the counts of a worker whose snapshot expired are kept"
    );
    assert_eq!(
        value(&values, r#"celeriac_task_run_seconds_count{queue="default",task="flaky"}"#),
        Some(2.0)
    );
}

#[tokio::test]
async fn a_fresh_namespace_has_well_formed_empty_metrics() {
    let app = TestApp::spawn().await;
    let (text, values) = scrape(&app).await;
    assert_eq!(value(&values, "celeriac_workers_online"), Some(0.0), "{text}");
    for family in [
        "celeriac_queue_enqueued_total counter",
        "celeriac_queue_pending gauge",
        "celeriac_tasks_started_total counter",
        "celeriac_task_run_seconds histogram",
        "celeriac_task_wait_seconds histogram",
    ] {
        assert!(text.contains(&format!("# TYPE {family}")), "{family} in {text}");
    }
}
