//! Reading history from the PostgreSQL archive through the gateway: `GET /tasks/{id}` of an
//! expired record answers from the archive (the same JSON, `archived: true`; its event stream
//! is that record alone), to tokens that may read its task type; `GET /tasks`
//! with `source=archive` returns exactly the tasks each filter matches, newest first, paged
//! without gap or repeat while tasks keep arriving; the gateway migrates the archive at start
//! and fails in one line on a bad URL or a newer database.

use std::collections::BTreeSet;
use std::time::Duration;

use celeriac_api::{Application, GatewaySettings};
use celeriac_archive::sqlx::{self, PgPool};
use celeriac_archive::{ArchiveSettings, Archiver, schema};
use celeriac_testkit::PostgresServer;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{TestApp, test_registry};

/// The gateway with the archive on and read from a fresh database of `pg`.
pub async fn app_with_archive(pg: &PostgresServer, adjust: impl FnOnce(&mut GatewaySettings)) -> (TestApp, PgPool) {
    let url = pg.fresh_database();
    let app = TestApp::spawn_with(|s| {
        s.common.archive.enabled = true;
        s.common.archive.database_url = Some(url.clone());
        adjust(s);
    })
    .await;
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&url).await.unwrap();
    (app, pool)
}

/// An in-process archiver on the app's broker, stopped by the returned token.
pub fn start_archiver(app: &TestApp, pool: &PgPool) -> CancellationToken {
    let settings = ArchiveSettings {
        poll: Duration::from_millis(20),
        ..ArchiveSettings::default()
    };
    let archiver = Archiver::new(app.broker.clone(), pool.clone(), settings, "test-archiver");
    let stop = CancellationToken::new();
    let done = stop.clone();
    tokio::spawn(async move { archiver.run(done.cancelled_owned()).await });
    stop
}

#[tokio::test]
async fn an_expired_record_answers_from_the_archive_with_the_same_json() {
    let pg = PostgresServer::start();
    let (app, pool) = app_with_archive(&pg, |s| s.common.tasks.result_ttl = Duration::from_secs(2)).await;
    app.start_worker(test_registry()).await;
    let _archiver = start_archiver(&app, &pool).await_guard();
    let response = app
        .post_json("/tasks", &json!({"task": "noop", "args": {"n": 1}, "tags": {"user_id": "42"}}))
        .await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned();
    let live = app.wait_terminal(&id).await;
    assert!(live.get("archived").is_none(), "a live record says nothing: {live}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let archived = loop {
        let response = app.get(&format!("/tasks/{id}")).await;
        if response.status() == 200 {
            let record: Value = response.json().await.unwrap();
            if record["archived"] == true {
                break record;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "task {id} never answered from the archive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut same = archived.clone();
    same.as_object_mut().unwrap().remove("archived");
    assert_eq!(same, live, "the archived record is the live one");
    assert_eq!(archived["options"]["tags"], json!({"user_id": "42"}));

    // Its event stream is that record alone, then the end (it changes no more).
    let response = app.get(&format!("/tasks/{id}/events")).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let kinds: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("event:")).map(str::trim).collect();
    let data: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect();
    assert_eq!((kinds, data), (vec!["snapshot"], vec![archived]), "{body}");
}

#[tokio::test]
async fn a_report_file_downloads_once_its_task_is_only_in_the_archive() {
    let pg = PostgresServer::start();
    let mut reports = std::path::PathBuf::new();
    let (app, pool) = app_with_archive(&pg, |s| reports = s.reports.dir.clone()).await;
    let id = format!("reports-{:032x}", 7);
    let file_name = format!("{id}.csv");
    std::fs::write(reports.join(&file_name), "month,emails_sent\n2026-12,3\n").unwrap();
    sqlx::query(
        "INSERT INTO celeriac_tasks (task_id, task, queue, state, args, result, attempts, deliveries, finished_at) \
         VALUES ($1, 'generate_report', 'reports', 'SUCCESS', '{}', $2, 1, 1, now())",
    )
    .bind(&id)
    .bind(sqlx::types::Json(json!({"file_name": file_name, "format": "csv"})))
    .execute(&pool)
    .await
    .unwrap();
    let response = app.get(&format!("/reports/{id}/file")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "month,emails_sent\n2026-12,3\n");
    // Not a report: still no file.
    let other = Row {
        id: format!("reports-{:032x}", 8),
        task: "noop",
        ..sample(1)
    };
    insert(&pool, std::slice::from_ref(&other)).await;
    assert_eq!(app.get(&format!("/reports/{}/file", other.id)).await.status(), 404);
}

#[tokio::test]
async fn an_archived_task_is_shown_only_to_tokens_that_may_read_its_type() {
    use celeriac_api::settings::{ApiToken, Role};
    const ADMIN: &str = "admin-token-0123456789abcdef";
    const ADDER: &str = "adder-producer-0123456789ab";
    const ADD_ADMIN: &str = "adder-admin-0123456789abcd";
    let pg = PostgresServer::start();
    let (app, pool) = app_with_archive(&pg, |s| {
        s.auth.admin_tokens = vec![ADMIN.into()];
        let adder = |name: &str, token: &str, role| ApiToken {
            name: name.into(),
            token: token.into(),
            role,
            queues: Vec::new(),
            tasks: vec!["add".to_owned()],
        };
        s.auth.tokens = vec![adder("adder", ADDER, Role::Producer), adder("add-admin", ADD_ADMIN, Role::Admin)];
    })
    .await;
    // Two tasks of queue `default` that Redis no longer holds: a `noop` and an `add`.
    let noop = Row {
        state: "FAILURE",
        ..sample(2)
    };
    let add = Row {
        id: format!("default-{:032x}", 1_000),
        task: "add",
        ..sample(2)
    };
    insert(&pool, &[noop.clone(), add.clone()]).await;
    let status = |path: String, token: &'static str| {
        let request = app.client.get(app.url(&path)).bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // The adder may read `add` tasks only: the queue alone would let it see the `noop`.
    assert_eq!(status(format!("/tasks/{}", add.id), ADDER).await, 200);
    assert_eq!(status(format!("/tasks/{}", noop.id), ADDER).await, 403);
    assert_eq!(status(format!("/tasks/{}/events", noop.id), ADDER).await, 403);
    assert_eq!(status(format!("/tasks/{}", noop.id), ADMIN).await, 200);
    assert_eq!(status(format!("/tasks/{}/events", noop.id), ADMIN).await, 200);
    // Nor retried by an admin token limited to `add` (the archived `noop` failed).
    let retry = |id: String, token: &'static str| {
        let request = app.client.post(app.url(&format!("/tasks/{id}/retry"))).bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(retry(noop.id.clone(), ADD_ADMIN).await, 403);
    assert_eq!(status(format!("/tasks/{}", noop.id), ADMIN).await, 200, "still only archived");
    assert_eq!(retry(noop.id.clone(), ADMIN).await, 200);
}

#[tokio::test]
async fn a_failed_task_whose_record_expired_is_retried_from_the_archive() {
    let pg = PostgresServer::start();
    let (app, pool) = app_with_archive(&pg, |_| {}).await;
    app.start_worker(test_registry()).await;
    let _archiver = start_archiver(&app, &pool).await_guard();
    // Tasks of last week, in the archive only: a dead-lettered `noop` with tags, a retry
    // budget, uniqueness and a debounce (its dead letter still listed, as it is until it ages
    // out), a success, and a failed workflow member.
    let failed = format!("default-{:032x}", 2_000);
    let archived = |id: &str, state: &str, workflow: Option<&str>| {
        sqlx::query(
            "INSERT INTO celeriac_tasks (task_id, task, queue, state, args, error, attempts, deliveries, finished_at, tags, options, workflow_id, workflow_node) \
             VALUES ($1, 'noop', 'default', $2, '{\"n\": 7}', $3, 3, 3, now() - interval '7 days', '{\"user_id\": \"42\"}', \
                     '{\"max_retries\": 2, \"unique_for\": 3600, \"debounce\": 3600, \"tags\": {\"user_id\": \"42\"}}', $4, $5)",
        )
        .bind(id.to_owned())
        .bind(state.to_owned())
        .bind((state == "FAILURE").then(|| sqlx::types::Json(json!({"kind": "Boom", "message": "down", "retryable": true}))))
        .bind(workflow.map(str::to_owned))
        .bind(workflow.map(|_| 0_i32))
        .execute(&pool)
    };
    archived(&failed, "FAILURE", None).await.unwrap();
    let dead = app.broker.keys().dead(&celeriac::QueueName::parse("default").unwrap());
    let suffix = failed.strip_prefix("default-").unwrap();
    let _: i64 = redis::AsyncCommands::zadd(&mut app.broker.connection(), &dead, suffix, 1)
        .await
        .unwrap();

    // An equal unique task waits now, holding the lock: a retry runs again what failed,
    // uniqueness aside, as a live retry does.
    let twin = app
        .post_json(
            "/tasks",
            &json!({"task": "noop", "args": {"n": 7}, "unique_for": 3600, "countdown": 3600}),
        )
        .await;
    assert_eq!(twin.status(), 202);
    let as_archived: celeriac::TaskRecord = app.get(&format!("/tasks/{failed}")).await.json().await.unwrap();
    assert_eq!(as_archived.options.debounce, Some(3600.0));

    let retried_at = Utc::now();
    let response = app.post(&format!("/tasks/{failed}/retry")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["outcome"], "queued");
    // It ran again under its id, with its arguments, tags and budget, as a live task: at
    // once, its debounce not applied again (it would have waited an hour), and created at the
    // retry (its record is stored anew).
    let record = app.wait_terminal(&failed).await;
    assert_eq!(record["state"], "SUCCESS", "{record}");
    assert_eq!(
        (&record["args"], &record["options"]["tags"]),
        (&json!({"n": 7}), &json!({"user_id": "42"}))
    );
    assert_eq!((&record["attempt"], &record["max_retries"]), (&json!(1), &json!(2)), "{record}");
    assert!(record.get("archived").is_none(), "{record}");
    assert!(record["options"].get("debounce").is_none(), "{record}");
    let created: DateTime<Utc> = serde_json::from_value(record["created_at"].clone()).unwrap();
    assert!(created >= retried_at - chrono::Duration::seconds(1), "{record}");
    // Retried again from that archived record, now that Redis holds the task once more (as
    // when two retries race): answered as a live retry of a success is.
    assert_eq!(
        app.broker.retry_archived(&as_archived).await.unwrap(),
        celeriac::broker::RetryOutcome::NotFinished(celeriac::TaskState::Success)
    );
    let dead_now: Vec<String> = redis::AsyncCommands::zrange(&mut app.broker.connection(), &dead, 0, -1)
        .await
        .unwrap();
    assert!(dead_now.is_empty(), "it is no dead letter any more: {dead_now:?}");
    // Its new ending replaces the archived one: one row, now a success.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT state FROM celeriac_tasks WHERE task_id = $1")
            .bind(&failed)
            .fetch_all(&pool)
            .await
            .unwrap();
        if rows == [("SUCCESS".to_owned(),)] {
            break;
        }
        assert_eq!(rows.len(), 1, "one row per task id");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retried run never reached the archive: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // What is not retried: a success, a workflow member whose workflow is gone, an unknown id.
    let succeeded = format!("default-{:032x}", 2_001);
    let member = format!("default-{:032x}", 2_002);
    archived(&succeeded, "SUCCESS", None).await.unwrap();
    archived(&member, "FAILURE", Some("wf-gone")).await.unwrap();
    let app = &app;
    let refused = |id: String| async move {
        let response = app.post(&format!("/tasks/{id}/retry")).await;
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap()["error"]["message"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    };
    let (status, message) = refused(succeeded.clone()).await;
    assert_eq!(status, 409);
    assert!(
        message.contains("is SUCCESS: only failed or revoked tasks can be retried"),
        "{message}"
    );
    let (status, message) = refused(member.clone()).await;
    assert_eq!(status, 409);
    assert!(message.contains("ran in workflow wf-gone"), "{message}");
    assert_eq!(refused(format!("default-{:032x}", 2_003)).await.0, 404);
    for id in [&succeeded, &member] {
        assert_eq!(
            app.get(&format!("/tasks/{id}")).await.json::<Value>().await.unwrap()["archived"],
            true,
            "{id} stays archived only"
        );
    }
}

/// Lets a test keep an archiver's token and stop it on drop.
trait AwaitGuard {
    fn await_guard(self) -> tokio_util::sync::DropGuard;
}

impl AwaitGuard for CancellationToken {
    fn await_guard(self) -> tokio_util::sync::DropGuard {
        self.drop_guard()
    }
}

/// One archived task, written straight into the table (the filters are the subject here).
#[derive(Debug, Clone)]
struct Row {
    id: String,
    task: &'static str,
    queue: &'static str,
    state: &'static str,
    finished: DateTime<Utc>,
    user: String,
    to: String,
    error: Option<String>,
}

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn sample(i: usize) -> Row {
    let (task, queue) = [("send_email", "emails"), ("generate_report", "reports"), ("noop", "default")][i % 3];
    let state = if i % 4 == 3 {
        "FAILURE"
    } else if i % 7 == 6 {
        "REVOKED"
    } else {
        "SUCCESS"
    };
    Row {
        id: format!("{queue}-{i:032x}"),
        task,
        queue,
        state,
        // Pairs of tasks end in the same second: the cursor must break ties by id.
        finished: base_time() + chrono::Duration::seconds((i / 2) as i64 * 60),
        user: (i % 5).to_string(),
        to: format!("u{}@example.com", i % 6),
        error: (state == "FAILURE").then(|| format!("mailbox {} unavailable", if i % 8 == 3 { "full" } else { "unknown" })),
    }
}

async fn insert(pool: &PgPool, rows: &[Row]) {
    for r in rows {
        sqlx::query(
            "INSERT INTO celeriac_tasks (task_id, task, queue, state, args, error, attempts, deliveries, finished_at, tags, options) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, 1, $7, $8, $9)",
        )
        .bind(&r.id)
        .bind(r.task)
        .bind(r.queue)
        .bind(r.state)
        .bind(sqlx::types::Json(json!({"to": r.to, "subject": "hi"})))
        .bind(
            r.error
                .as_ref()
                .map(|m| sqlx::types::Json(json!({"kind": "SmtpError", "message": m, "retryable": false}))),
        )
        .bind(r.finished)
        .bind(sqlx::types::Json(json!({"user_id": r.user})))
        .bind(sqlx::types::Json(json!({"tags": {"user_id": r.user}})))
        .execute(pool)
        .await
        .unwrap();
    }
}

/// Every page of `query` (newest first), following the cursor; panics on a repeat.
async fn all_pages(app: &TestApp, query: &str, limit: usize, between: impl AsyncFn(usize)) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0..100 {
        let mut url = format!("/tasks?source=archive&limit={limit}&{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let response = app.get(&url).await;
        assert_eq!(response.status(), 200, "{url}: {:?}", response.text().await);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["source"], "archive");
        for t in body["tasks"].as_array().unwrap() {
            assert_eq!(t["archived"], true);
            ids.push(t["task_id"].as_str().unwrap().to_owned());
        }
        between(page).await;
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a task was listed twice: {ids:?}");
    ids
}

/// The ids of `rows` matching `keep`, newest ending first (ties: the greater id first).
fn expected(rows: &[Row], keep: impl Fn(&Row) -> bool) -> Vec<String> {
    let mut kept: Vec<&Row> = rows.iter().filter(|r| keep(r)).collect();
    kept.sort_by(|a, b| (b.finished, &b.id).cmp(&(a.finished, &a.id)));
    kept.into_iter().map(|r| r.id.clone()).collect()
}

#[tokio::test]
async fn each_search_filter_returns_exactly_the_matching_tasks() {
    let pg = PostgresServer::start();
    let (app, pool) = app_with_archive(&pg, |_| {}).await;
    let rows: Vec<Row> = (0..48).map(sample).collect();
    insert(&pool, &rows).await;
    let t = |minutes: i64| (base_time() + chrono::Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (from, to) = (
        base_time() + chrono::Duration::minutes(5),
        base_time() + chrono::Duration::minutes(15),
    );
    let cases: Vec<(String, Vec<String>)> = vec![
        ("task=send_email".into(), expected(&rows, |r| r.task == "send_email")),
        ("queue=reports".into(), expected(&rows, |r| r.queue == "reports")),
        ("state=FAILURE".into(), expected(&rows, |r| r.state == "FAILURE")),
        ("state=revoked".into(), expected(&rows, |r| r.state == "REVOKED")),
        (
            format!("from={}&to={}", t(5).replace('+', "%2B"), t(15).replace('+', "%2B")),
            expected(&rows, |r| r.finished >= from && r.finished < to),
        ),
        ("tag=user_id:3".into(), expected(&rows, |r| r.user == "3")),
        (
            "error=full".into(),
            expected(&rows, |r| r.error.as_deref().is_some_and(|e| e.contains("full"))),
        ),
        (
            "error=smtperror%20unknown".into(),
            expected(&rows, |r| r.error.as_deref().is_some_and(|e| e.contains("unknown"))),
        ),
        (
            "args=%7B%22to%22%3A%22u2%40example.com%22%7D".into(),
            expected(&rows, |r| r.to == "u2@example.com"),
        ),
        (
            "task=send_email&state=SUCCESS&tag=user_id:0".into(),
            expected(&rows, |r| r.task == "send_email" && r.state == "SUCCESS" && r.user == "0"),
        ),
    ];
    for (query, want) in cases {
        assert!(!want.is_empty(), "{query}: the sample must match something");
        let got = all_pages(&app, &query, 5, async |_| {}).await;
        assert_eq!(got, want, "{query}");
    }
    // A filter only the archive knows selects it by itself.
    let body: Value = app.get("/tasks?error=full").await.json().await.unwrap();
    assert_eq!(body["source"], "archive");

    for (query, field) in [
        ("source=archive&state=PENDING", "state"),
        ("source=archive&from=yesterday", "from"),
        ("source=archive&args=%7Bnot-json", "args"),
        ("source=archive&cursor=nope", "cursor"),
        ("source=elsewhere", "source"),
        ("source=live&error=x", "source"),
    ] {
        let response = app.get(&format!("/tasks?{query}")).await;
        assert_eq!(response.status(), 422, "{query}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn history_pages_have_no_gap_or_repeat_while_tasks_arrive() {
    let pg = PostgresServer::start();
    let (app, pool) = app_with_archive(&pg, |_| {}).await;
    let rows: Vec<Row> = (0..40).map(sample).collect();
    insert(&pool, &rows).await;
    let want = expected(&rows, |_| true);
    let pool2 = pool.clone();
    let got = all_pages(&app, "", 7, async |page| {
        // Tasks keep ending while the client pages (newer than everything listed so far).
        let mut new = sample(1000 + page);
        new.finished = Utc::now();
        insert(&pool2, &[new]).await;
    })
    .await;
    let new_seen: Vec<&String> = got.iter().filter(|id| !want.contains(id)).collect();
    assert!(
        new_seen.is_empty(),
        "tasks newer than the first page appeared in later pages: {new_seen:?}"
    );
    assert_eq!(got, want, "every task once, newest first");
}

#[tokio::test]
async fn without_an_archive_history_cannot_be_searched_and_expired_records_are_404() {
    let app = TestApp::spawn().await;
    let response = app.get("/tasks?source=archive").await;
    assert_eq!(response.status(), 422);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["field"], "source");
}

#[tokio::test]
async fn the_gateway_migrates_the_archive_at_start_and_refuses_a_newer_or_unreachable_one() {
    let pg = PostgresServer::start();
    let url = pg.fresh_database();
    let settings = |url: &str| {
        let mut s = GatewaySettings::default();
        s.http.bind = ([127, 0, 0, 1], 0).into();
        s.common.archive.database_url = Some(url.to_owned());
        s
    };
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&url).await.unwrap();
    assert_eq!(schema::database_version(&pool).await.unwrap(), None);
    Application::build(settings(&url), CancellationToken::new())
        .await
        .expect("first start");
    assert_eq!(schema::database_version(&pool).await.unwrap(), Some(schema::latest_version()));
    Application::build(settings(&url), CancellationToken::new())
        .await
        .expect("second start: a no-op");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, schema::MIGRATOR.iter().count());

    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'from a newer build', true, '\\x00', 1)",
    )
    .bind(schema::latest_version() + 1)
    .execute(&pool)
    .await
    .unwrap();
    let err = Application::build(settings(&url), CancellationToken::new())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("archive.database_url") && err.contains("newer than this build") && !err.contains('\n'),
        "{err}"
    );

    let wrong = "postgres://celeriac:secret@127.0.0.1:1/none";
    let err = Application::build(settings(wrong), CancellationToken::new())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.starts_with("archive.database_url") && !err.contains('\n') && !err.contains("secret"),
        "{err}"
    );
}

#[tokio::test]
async fn metrics_show_the_archive_backlog_and_size() {
    let pg = PostgresServer::start();
    let (app, pool) = app_with_archive(&pg, |_| {}).await;
    app.start_worker(test_registry()).await;
    for _ in 0..3 {
        let id = app.enqueue("noop", json!(null)).await;
        app.wait_terminal(&id).await;
    }
    let metric = |text: &str, name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        metric(&text, "celeriac_archive_backlog"),
        3.0,
        "three hand-overs (one task each, finished one by one) wait for an archiver"
    );
    assert!(text.contains("celeriac_archive_backlog_queue{queue=\"default\"} 3"), "{text}");
    let waited = metric(&text, "celeriac_archive_oldest_seconds");
    assert!(
        waited > 0.0 && waited < 60.0,
        "the oldest hand-over has waited since its task ended: {text}"
    );

    let _archiver = start_archiver(&app, &pool).await_guard();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = app.get("/metrics").await.text().await.unwrap();
        if metric(&text, "celeriac_archive_backlog") == 0.0 {
            sqlx::query("ANALYZE celeriac_tasks").execute(&pool).await.unwrap();
            let text = app.get("/metrics").await.text().await.unwrap();
            assert_eq!(metric(&text, "celeriac_archive_rows"), 3.0);
            assert_eq!(metric(&text, "celeriac_archive_oldest_seconds"), 0.0, "nothing waits");
            assert!(metric(&text, "celeriac_archive_bytes") > 0.0);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the backlog never drained: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn daily_counts_give_runs_and_failures_per_task_per_day() {
    let pg = PostgresServer::start();
    let (app, pool) = app_with_archive(&pg, |_| {}).await;
    let now = Utc::now();
    let mut rows: Vec<Row> = (0..12).map(sample).collect();
    for (i, r) in rows.iter_mut().enumerate() {
        r.finished = now - chrono::Duration::days((i % 2) as i64);
    }
    insert(&pool, &rows).await;
    let counts: Value = app.get("/history/daily?days=2").await.json().await.unwrap();
    let today = now.date_naive().to_string();
    let got = counts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["day"] == today.as_str() && c["task"] == "send_email")
        .cloned()
        .unwrap_or_else(|| panic!("{counts}"));
    let want = |f: &dyn Fn(&Row) -> bool| {
        rows.iter()
            .enumerate()
            .filter(|(i, r)| i % 2 == 0 && r.task == "send_email" && f(r))
            .count()
    };
    assert_eq!(got["runs"], want(&|_| true) as u64);
    assert_eq!(got["failures"], want(&|r| r.state == "FAILURE") as u64);
    assert_eq!(app.get("/history/daily?days=0").await.status(), 422);
}

#[tokio::test]
async fn daily_counts_without_an_archive_are_not_found_not_a_bad_field() {
    let app = TestApp::spawn().await;
    let answer = app.get("/history/daily?days=3").await;
    assert_eq!(answer.status(), 404);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no archive"), "{body}");
}
