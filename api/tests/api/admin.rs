//! The admin API against a real Redis and an in-process worker: queue depths and counters,
//! pause and resume, purge, the worker list, the task listing with its cursor, dead letters
//! and throughput.

use std::collections::HashSet;
use std::time::Duration;

use celeriac_testkit::eventually;
use serde_json::{Value, json};

use crate::common::{TestApp, test_registry};

async fn post_task(app: &TestApp, body: Value) -> String {
    let response = app.post_json("/tasks", &body).await;
    assert_eq!(response.status(), 202, "{body}");
    response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned()
}

/// Posts `n` no-op tasks on `queue`, one at a time; their ids in the order posted.
async fn post_noops(app: &TestApp, queue: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(post_task(app, json!({"task": "noop", "args": null, "queue": queue})).await);
    }
    ids
}

async fn wait_for_state(app: &TestApp, id: &str, state: &str) -> Value {
    eventually(Duration::from_secs(20), &format!("{id} reaches {state}"), || async {
        let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
        (record["state"] == state).then_some(record)
    })
    .await
}

async fn queue(app: &TestApp, name: &str) -> Value {
    let all: Value = app.get("/queues").await.json().await.unwrap();
    all["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no queue {name} in {all}"))
}

async fn error_field(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"]["field"].clone())
}

#[tokio::test]
async fn queue_counts_match_a_known_setup() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    let running = post_task(&app, json!({"task": "sleep", "args": {"ms": 20_000}})).await;
    let retrying = post_task(
        &app,
        json!({"task": "flaky", "args": {"fail_times": 1}, "retry_delay": 60, "retry_jitter": false}),
    )
    .await;
    let dead = post_task(&app, json!({"task": "fail", "args": {"message": "boom"}})).await;
    post_task(&app, json!({"task": "noop", "args": null, "countdown": 60})).await;
    post_noops(&app, "parked", 3).await;
    wait_for_state(&app, &running, "STARTED").await;
    wait_for_state(&app, &retrying, "RETRY").await;
    wait_for_state(&app, &dead, "FAILURE").await;

    let q = queue(&app, "default").await;
    let counts: Vec<u64> = [
        "pending",
        "scheduled",
        "active",
        "retrying",
        "dead",
        "enqueued_total",
        "failed_total",
    ]
    .iter()
    .map(|k| q[*k].as_u64().unwrap_or_else(|| panic!("{k} in {q}")))
    .collect();
    assert_eq!(counts, [0, 1, 1, 1, 1, 4, 1], "{q}");
    assert_eq!(q["paused"], false);
    assert!(q["oldest_pending_age_secs"].is_null(), "nothing pending: {q}");
    let throughput = q["throughput"].as_array().unwrap();
    assert_eq!(throughput.len(), 60);
    assert_eq!(throughput.iter().map(|m| m["failed"].as_u64().unwrap()).sum::<u64>(), 1);

    let parked = queue(&app, "parked").await;
    assert_eq!((parked["pending"].as_u64(), parked["active"].as_u64()), (Some(3), Some(0)));
    assert!(parked["oldest_pending_age_secs"].as_f64().unwrap() >= 0.0, "{parked}");

    let dead_letters: Value = app.get("/queues/default/dead").await.json().await.unwrap();
    let ids: Vec<&str> = dead_letters["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [dead.as_str()]);
    assert_eq!(dead_letters["tasks"][0]["error"]["message"], "boom");
}

#[tokio::test]
async fn a_paused_queue_keeps_its_tasks_until_resumed() {
    let app = TestApp::spawn().await;
    let paused: Value = app.post_json("/queues/default/pause", &json!({})).await.json().await.unwrap();
    assert_eq!((paused["name"].as_str(), paused["paused"].as_bool()), (Some("default"), Some(true)));
    app.start_worker(test_registry()).await;
    let id = post_task(&app, json!({"task": "noop", "args": null})).await;
    eventually(Duration::from_secs(10), "the worker registers", || async {
        app.broker.live_workers().await.ok().filter(|w| !w.is_empty())
    })
    .await;
    // The claim that must not happen has no event to wait for: time passing with the worker
    // up is the thing under test. The window is the worker's pause check (1 s) twice over.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
    assert_eq!(record["state"], "PENDING", "a paused queue is not consumed");
    assert_eq!(queue(&app, "default").await["pending"], 1);

    let resumed: Value = app.post_json("/queues/default/resume", &json!({})).await.json().await.unwrap();
    assert_eq!(resumed["paused"], false);
    assert_eq!(app.wait_terminal(&id).await["state"], "SUCCESS");
}

#[tokio::test]
async fn purge_answers_the_count_and_revokes_the_tasks() {
    let app = TestApp::spawn().await;
    let ids = post_noops(&app, "parked", 3).await;
    let purged: Value = app.delete("/queues/parked/pending").await.json().await.unwrap();
    assert_eq!(purged, json!({"removed": 3}));
    for id in &ids {
        let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
        assert_eq!(record["state"], "REVOKED", "{record}");
    }
    assert_eq!(queue(&app, "parked").await["pending"], 0);
    let unknown: Value = app.delete("/queues/never-used/pending").await.json().await.unwrap();
    assert_eq!(unknown, json!({"removed": 0}));
    let invalid = app.delete("/queues/a%7Bb%7D/pending").await;
    assert_eq!(error_field(invalid).await, (422, json!("queue")));
    let invalid = app.post_json("/queues/a%7Bb%7D/pause", &json!({})).await;
    assert_eq!(error_field(invalid).await, (422, json!("queue")));
}

#[tokio::test]
async fn the_worker_list_shows_the_in_process_worker_and_its_queues() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/workers").await.json::<Value>().await.unwrap(), json!({"workers": []}));
    app.start_worker(test_registry()).await;
    let workers = eventually(Duration::from_secs(10), "the worker registers", || async {
        let body: Value = app.get("/workers").await.json().await.unwrap();
        let workers = body["workers"].as_array().unwrap().clone();
        (!workers.is_empty()).then_some(workers)
    })
    .await;
    assert_eq!(workers.len(), 1);
    let queues: Vec<&str> = workers[0]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q.as_str().unwrap())
        .collect();
    assert!(queues.contains(&"default"), "{queues:?}");
    assert_eq!(workers[0]["pid"], std::process::id());
}

/// Every task of the listing for `query`, page by page, with how many pages it took.
async fn all_pages(app: &TestApp, query: &str) -> (Vec<Value>, usize) {
    let mut tasks = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 1..=100 {
        let url = match &cursor {
            Some(c) => format!("/tasks?{query}&cursor={c}"),
            None => format!("/tasks?{query}"),
        };
        let response = app.get(&url).await;
        assert_eq!(response.status(), 200, "{url}");
        let body: Value = response.json().await.unwrap();
        tasks.extend(body["tasks"].as_array().unwrap().iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (tasks, page),
        }
    }
    panic!("the listing for {query} never ended");
}

fn ids_of(tasks: &[Value]) -> Vec<String> {
    tasks.iter().map(|t| t["task_id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_listing_filters_and_pages_without_duplicates_or_gaps() {
    let app = TestApp::spawn().await;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..20 {
        if i % 3 == 0 {
            b.push(post_task(&app, json!({"task": "echo", "args": i, "queue": "list-b"})).await);
        } else {
            a.push(post_task(&app, json!({"task": "noop", "args": null, "queue": "list-a"})).await);
        }
    }
    for id in &a[..2] {
        assert_eq!(app.post_json(&format!("/tasks/{id}/revoke"), &json!({})).await.status(), 200);
    }

    let (every, pages) = all_pages(&app, "limit=3").await;
    assert!(pages >= 7, "20 tasks by 3 take 7 pages, took {pages}");
    let listed = ids_of(&every);
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "no duplicates");
    let expected: HashSet<&String> = a.iter().chain(&b).collect();
    assert_eq!(unique, expected, "no gaps");
    // As times, not text: a time on a whole second is written without milliseconds.
    let created: Vec<_> = every
        .iter()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t["created_at"].as_str().unwrap()).unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first: {created:?}");

    let (only_b, _) = all_pages(&app, "queue=list-b&limit=2").await;
    assert_eq!(ids_of(&only_b).into_iter().collect::<HashSet<_>>(), b.iter().cloned().collect());
    let (noops, _) = all_pages(&app, "task=noop&limit=50").await;
    assert_eq!(noops.len(), a.len());
    let (revoked, _) = all_pages(&app, "state=REVOKED&limit=1").await;
    assert_eq!(
        ids_of(&revoked).into_iter().collect::<HashSet<_>>(),
        a[..2].iter().cloned().collect()
    );
    let (pending_a, _) = all_pages(&app, "state=PENDING&queue=list-a&limit=4").await;
    assert_eq!(pending_a.len(), a.len() - 2);
    let first: Value = app.get("/tasks?limit=1").await.json().await.unwrap();
    assert_eq!(first["tasks"][0]["task_id"], every[0]["task_id"], "the newest comes first");

    for (query, field) in [
        ("state=NOPE", "state"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=x", "limit"),
        ("cursor=garbage", "cursor"),
        ("queue=a%7Bb%7D", "queue"),
    ] {
        assert_eq!(
            error_field(app.get(&format!("/tasks?{query}")).await).await,
            (422, json!(field)),
            "{query}"
        );
    }
}

#[tokio::test]
async fn a_rare_filter_is_answered_in_bounded_pages_that_go_on() {
    let app = TestApp::spawn().await;
    let rare = post_task(&app, json!({"task": "echo", "args": 1, "queue": "mixed"})).await;
    post_noops(&app, "mixed", 30).await;
    // limit 1 examines at most 10 entries a page: the echo (the oldest) is four pages away.
    let (found, pages) = all_pages(&app, "task=echo&limit=1").await;
    assert_eq!(ids_of(&found), [rare]);
    assert!(pages >= 3, "bounded pages, took {pages}");
}

#[tokio::test]
async fn throughput_shows_finished_runs_in_the_current_minute() {
    let app = TestApp::spawn().await;
    app.start_worker(test_registry()).await;
    for _ in 0..3 {
        let id = post_task(&app, json!({"task": "noop", "args": null})).await;
        assert_eq!(app.wait_terminal(&id).await["state"], "SUCCESS");
    }
    let q = queue(&app, "default").await;
    assert_eq!(q["succeeded_total"], 3);
    let throughput = q["throughput"].as_array().unwrap();
    let last = throughput.last().unwrap();
    let minute = chrono::DateTime::parse_from_rfc3339(last["minute"].as_str().unwrap()).unwrap();
    let age = chrono::Utc::now().signed_duration_since(minute).num_seconds();
    assert!((0..120).contains(&age), "the last entry is the current minute: {last}");
    let recent: u64 = throughput[58..].iter().map(|m| m["succeeded"].as_u64().unwrap()).sum();
    assert_eq!(recent, 3, "counted in this minute (or the one before, at a minute's turn)");
    let first = chrono::DateTime::parse_from_rfc3339(throughput[0]["minute"].as_str().unwrap()).unwrap();
    assert_eq!((minute - first).num_minutes(), 59, "oldest first");
}

#[tokio::test]
async fn with_tokens_the_admin_routes_need_the_admin_token_and_the_dashboard_files_do_not() {
    const ADMIN: &str = "admin-token-0123456789";
    let app = TestApp::spawn_with(|s| s.auth.admin_tokens = vec![ADMIN.into()]).await;
    for path in ["/queues", "/workers", "/tasks", "/queues/default/dead"] {
        assert_eq!(app.get(path).await.status(), 401, "{path}");
        let authorized = app.client.get(app.url(path)).bearer_auth(ADMIN).send().await.unwrap();
        assert_eq!(authorized.status(), 200, "{path}");
    }
    let page = app.get("/dashboard").await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("/dashboard/app.js"));
    for file in ["app.js", "api.js", "pages.js", "render.js"] {
        let script = app.get(&format!("/dashboard/{file}")).await;
        assert_eq!(script.status(), 200, "{file}");
        assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    }
    let missing = app.get("/dashboard/secret.txt").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"]["code"], "not_found");
}

#[tokio::test]
async fn entries_of_the_same_millisecond_are_paged_without_duplicates_or_gaps() {
    let app = TestApp::spawn().await;
    let mut posted = Vec::new();
    for i in 0..10 {
        let queue = if i % 2 == 0 { "same-ms" } else { "same-ms-b" };
        posted.push(post_task(&app, json!({"task": "noop", "args": null, "queue": queue})).await);
    }
    // Every entry at the same ms: then the order is by queue name, and newest first within one.
    let mut conn = app.broker.connection();
    for queue in ["same-ms", "same-ms-b"] {
        let log = app.broker.keys().listing(&celeriac::QueueName::parse(queue).unwrap());
        let entries: Vec<String> = redis::AsyncCommands::lrange(&mut conn, &log, 0, -1).await.unwrap();
        for (i, entry) in entries.iter().enumerate() {
            // `<ms>-<suffix>`, or the suffix alone when the id holds the ms
            let suffix = entry.rsplit('-').next().unwrap();
            let () = redis::AsyncCommands::lset(&mut conn, &log, i as isize, format!("1000-{suffix}"))
                .await
                .unwrap();
        }
    }
    let (tasks, pages) = all_pages(&app, "limit=3").await;
    assert!(pages >= 4, "{pages}");
    let newest_first = |queue: &'static str| {
        posted
            .iter()
            .rev()
            .filter(move |id| id.rsplit_once('-').unwrap().0 == queue)
            .cloned()
    };
    let expected: Vec<String> = newest_first("same-ms").chain(newest_first("same-ms-b")).collect();
    assert_eq!(ids_of(&tasks), expected, "no duplicates, no gaps, in order");
}

#[tokio::test]
async fn tasks_enqueued_between_pages_neither_repeat_nor_hide_older_ones() {
    let app = TestApp::spawn().await;
    let older: HashSet<String> = post_noops(&app, "moving", 7).await.into_iter().collect();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let url = match &cursor {
            Some(c) => format!("/tasks?queue=moving&limit=2&cursor={c}"),
            None => "/tasks?queue=moving&limit=2".to_owned(),
        };
        let page: Value = app.get(&url).await.json().await.unwrap();
        seen.extend(ids_of(page["tasks"].as_array().unwrap()));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
        // A newer task lands while the client reads the pages.
        post_noops(&app, "moving", 1).await;
    }
    assert_eq!(cursor, None, "the listing ended");
    assert_eq!(seen.len(), older.len(), "no duplicates: {seen:?}");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), older, "exactly the older tasks");
}

#[tokio::test]
async fn entries_dropped_by_the_cap_leave_the_others_in_place_even_mid_walk() {
    let app = TestApp::spawn().await;
    let mut posted = post_noops(&app, "capped", 6).await;
    posted.reverse(); // newest first, as listed
    let queue = celeriac::QueueName::parse("capped").unwrap();
    let (log, stats) = (app.broker.keys().listing(&queue), app.broker.keys().stats(&queue));
    let mut conn = app.broker.connection();
    // What the enqueue script does at the cap: drop the oldest, and count them.
    let mut cap = async |keep: isize, dropped: i64| {
        let () = redis::AsyncCommands::ltrim(&mut conn, &log, 0, keep - 1).await.unwrap();
        let _: i64 = redis::AsyncCommands::hincr(&mut conn, &stats, "listing_dropped", dropped)
            .await
            .unwrap();
    };
    cap(4, 2).await;
    let first: Value = app.get("/tasks?queue=capped&limit=2").await.json().await.unwrap();
    assert_eq!(ids_of(first["tasks"].as_array().unwrap()), posted[..2]);
    cap(3, 1).await; // one more dropped while the client reads
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .get(&format!("/tasks?queue=capped&limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        ids_of(second["tasks"].as_array().unwrap()),
        posted[2..3],
        "the one left after the first page"
    );
    assert_eq!(second["next_cursor"], Value::Null);
}
