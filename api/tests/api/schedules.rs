//! `/schedules` through the real gateway: every endpoint, every bad input, schedules from the
//! settings file protected, and storage that outlives the gateway.

use celeriac::broker::ScheduleSource;
use celeriac::schedule::ScheduleDef;
use celeriac_api::{Application, GatewaySettings};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::TestApp;

async fn put(app: &TestApp, name: &str, body: &Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/schedules/{name}")))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn delete(app: &TestApp, name: &str) -> reqwest::Response {
    app.delete(&format!("/schedules/{name}")).await
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{body}");
    (status, body["error"].clone())
}

/// Stores a schedule as a beat does for the settings file.
async fn settings_schedule(app: &TestApp, name: &str) {
    let def: ScheduleDef = serde_json::from_value(json!({"name": name, "task": "noop", "every": "1h", "queue": "default"})).unwrap();
    app.broker.put_schedule(&def, ScheduleSource::Settings).await.unwrap();
}

#[tokio::test]
async fn a_schedule_is_created_listed_read_replaced_and_deleted() {
    let app = TestApp::spawn().await;
    let response = put(
        &app,
        "nightly",
        &json!({"task": "add", "args": [1, 2], "cron": "30 2 * * *", "timezone": "America/New_York"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/schedules/nightly");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["name"], "nightly");
    assert_eq!(created["task"], "add");
    assert_eq!(created["args"], json!([1, 2]));
    assert_eq!(created["queue"], "default", "resolved from the task's route");
    assert_eq!(created["cron"], "30 2 * * *");
    assert_eq!(created["timezone"], "America/New_York");
    assert_eq!(created["misfire"], "once");
    assert_eq!(created["source"], "api");
    assert_eq!(created["paused"], false);
    assert_eq!(
        (created["last_run"].clone(), created["last_task_id"].clone()),
        (Value::Null, Value::Null)
    );
    let next: chrono::DateTime<chrono::FixedOffset> = created["next_run"].as_str().unwrap().parse().unwrap();
    assert!(next > chrono::Utc::now(), "{next}");
    let utc = next.with_timezone(&chrono::Utc).format("%H:%M:%S").to_string();
    assert!(["06:30:00", "07:30:00"].contains(&utc.as_str()), "02:30 in New York is {utc} UTC");

    let response = put(
        &app,
        "tick",
        &json!({"task": "noop", "every": "30s", "misfire": "skip", "options": {"expires": 20, "max_retries": 0}}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let tick: Value = response.json().await.unwrap();
    assert_eq!((tick["every"].as_str(), tick["timezone"].clone()), (Some("30s"), Value::Null));
    assert_eq!(tick["options"], json!({"expires": 20.0, "max_retries": 0}));

    let list: Value = app.get("/schedules").await.json().await.unwrap();
    let names: Vec<&str> = list["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nightly", "tick"]);
    let one: Value = app.get("/schedules/tick").await.json().await.unwrap();
    assert_eq!(one, tick);

    let same = put(
        &app,
        "tick",
        &json!({"task": "noop", "every": "30s", "misfire": "skip", "options": {"expires": 20, "max_retries": 0}}),
    )
    .await;
    assert_eq!(same.status(), 200);
    let replaced = put(
        &app,
        "tick",
        &json!({"task": "echo", "args": {"hi": 1}, "every": "1m", "queue": "reports"}),
    )
    .await;
    assert_eq!(replaced.status(), 200);
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(
        (replaced["task"].as_str(), replaced["every"].as_str(), replaced["queue"].as_str()),
        (Some("echo"), Some("1m"), Some("reports"))
    );

    assert_eq!(delete(&app, "tick").await.status(), 204);
    assert_eq!(error_of(delete(&app, "tick").await).await.0, 404);
    assert_eq!(error_of(app.get("/schedules/tick").await).await.0, 404);
    let list: Value = app.get("/schedules").await.json().await.unwrap();
    assert_eq!(list["schedules"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_bad_input_is_refused_naming_the_problem_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"task": "noop", "cron": "61 * * * *"}), "cron", "61 * * * *"),
        (json!({"task": "noop", "cron": "* * * *"}), "cron", "4 fields"),
        (json!({"task": "noop", "cron": "0 0 0 1 1 * 2030"}), "cron", "7 fields"),
        (json!({"task": "noop", "cron": "0 0 30 2 *"}), "cron", "never matches"),
        (
            json!({"task": "noop", "cron": "* * * * *", "timezone": "Mars/Olympus"}),
            "timezone",
            "Mars/Olympus",
        ),
        (
            json!({"task": "noop", "every": "30s", "timezone": "UTC"}),
            "timezone",
            "cron schedules only",
        ),
        (json!({"task": "noop", "every": "30s", "cron": "* * * * *"}), "cron", "not both"),
        (json!({"task": "noop"}), "every", "`every`"),
        (json!({"task": "noop", "every": "soon"}), "every", "soon"),
        (json!({"task": "noop", "every": "0s"}), "every", "1s"),
        (json!({"task": "noop", "every": 30}), "every", "string"),
        (json!({"task": "noop", "every": "1m", "queue": "{bad}"}), "queue", "queue name"),
        (json!({"task": "noop", "every": "1m", "misfire": "burst"}), "misfire", "burst"),
        (
            json!({"task": "noop", "every": "1m", "options": {"expires": 0}}),
            "options.expires",
            "seconds",
        ),
        (
            json!({"task": "noop", "every": "1m", "options": {"time_limit": -1}}),
            "options.time_limit",
            "seconds",
        ),
        (
            json!({"task": "noop", "every": "1m", "options": {"urgency": 1}}),
            "options.urgency",
            "urgency",
        ),
        (json!({"task": "noop", "every": "1m", "name": "x"}), "name", "name"),
        (json!({"every": "1m"}), "task", "task"),
        (
            json!({"task": "send_email", "every": "1m", "args": {"to": "nope", "subject": "s", "body": "b"}}),
            "args.to",
            "e-mail",
        ),
        (json!({"task": "add", "every": "1m", "args": ["x"]}), "args", ""),
    ];
    for (body, field, mentions) in cases {
        let (status, error) = error_of(put(&app, "bad", &body).await).await;
        assert_eq!((status, error["code"].as_str()), (422, Some("invalid_field")), "{body}: {error}");
        assert_eq!(error["field"], field, "{body}: {error}");
        assert!(error["message"].as_str().unwrap().contains(mentions), "{body}: {error}");
    }

    let (status, error) = error_of(put(&app, "bad", &json!({"task": "no_such_task", "every": "1m"})).await).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("unknown_task")));
    assert!(error["known_tasks"].as_array().unwrap().contains(&json!("noop")), "{error}");

    let (status, error) = error_of(put(&app, "a%40b", &json!({"task": "noop", "every": "1m"})).await).await;
    assert_eq!((status, error["field"].as_str()), (422, Some("name")), "{error}");
    let long = "n".repeat(129);
    assert_eq!(
        error_of(put(&app, &long, &json!({"task": "noop", "every": "1m"})).await).await.0,
        422
    );

    let malformed = app
        .client
        .put(app.url("/schedules/bad"))
        .header("content-type", "application/json")
        .body("{\"task\": ")
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(malformed).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("malformed_json")));
    let text = app
        .client
        .put(app.url("/schedules/bad"))
        .header("content-type", "text/plain")
        .body(r#"{"task": "noop", "every": "1m"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(text).await.0, 415);

    let list: Value = app.get("/schedules").await.json().await.unwrap();
    assert_eq!(list["schedules"], json!([]), "nothing was stored");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = TestApp::spawn_with(|s| s.http.body_limit_bytes = 1024).await;
    let body = json!({"task": "echo", "every": "1m", "args": {"pad": "x".repeat(4096)}});
    let (status, error) = error_of(put(&app, "big", &body).await).await;
    assert_eq!((status, error["code"].as_str()), (413, Some("payload_too_large")));
}

#[tokio::test]
async fn pause_and_resume_show_in_the_schedule() {
    let app = TestApp::spawn().await;
    assert_eq!(put(&app, "tick", &json!({"task": "noop", "every": "1h"})).await.status(), 201);
    let paused: Value = app.post("/schedules/tick/pause").await.json().await.unwrap();
    assert_eq!((paused["paused"].as_bool(), paused["next_run"].clone()), (Some(true), Value::Null));
    let again = app.post("/schedules/tick/pause").await;
    assert_eq!(again.status(), 200, "pausing twice is fine");
    let resumed: Value = app.post("/schedules/tick/resume").await.json().await.unwrap();
    assert_eq!(resumed["paused"], false);
    assert!(resumed["next_run"].is_string(), "{resumed}");
    for path in ["/schedules/nope/pause", "/schedules/nope/resume", "/schedules/nope/run"] {
        let (status, error) = error_of(app.post(path).await).await;
        assert_eq!((status, error["code"].as_str()), (404, Some("not_found")), "{path}");
    }
}

#[tokio::test]
async fn run_fires_now_and_records_the_task_as_the_last_run() {
    let app = TestApp::spawn().await;
    let body = json!({"task": "echo", "args": {"x": 1}, "every": "1d", "options": {"expires": 60, "max_retries": 2}});
    assert_eq!(put(&app, "daily-echo", &body).await.status(), 201);
    assert_eq!(app.post("/schedules/daily-echo/pause").await.status(), 200);

    let response = app.post("/schedules/daily-echo/run").await;
    assert_eq!(response.status(), 202, "a paused schedule can still be fired by hand");
    let accepted: Value = response.json().await.unwrap();
    let id = accepted["task_id"].as_str().unwrap().to_owned();
    assert_eq!(
        (accepted["state"].as_str(), accepted["queue"].as_str()),
        (Some("PENDING"), Some("default"))
    );

    let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
    assert_eq!(
        (record["task"].as_str(), record["max_retries"].as_u64()),
        (Some("echo"), Some(2)),
        "{record}"
    );
    assert!(record["expires_at"].is_string(), "{record}");
    let schedule: Value = app.get("/schedules/daily-echo").await.json().await.unwrap();
    assert_eq!(schedule["last_task_id"], id.as_str());
    assert!(schedule["last_run"].is_string(), "{schedule}");

    let second: Value = app.post("/schedules/daily-echo/run").await.json().await.unwrap();
    assert_ne!(second["task_id"], id.as_str(), "each manual run is a new task");

    // A schedule whose task is no longer known (a custom worker gone) is 422 listing names.
    let def: ScheduleDef =
        serde_json::from_value(json!({"name": "ghost", "task": "ghost_task", "every": "1h", "queue": "default"})).unwrap();
    app.broker.put_schedule(&def, ScheduleSource::Api).await.unwrap();
    let (status, error) = error_of(app.post("/schedules/ghost/run").await).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("unknown_task")));
}

#[tokio::test]
async fn schedules_from_the_settings_file_cannot_be_changed_or_deleted_through_the_api() {
    let app = TestApp::spawn().await;
    settings_schedule(&app, "from-file").await;
    let (status, error) = error_of(put(&app, "from-file", &json!({"task": "noop", "every": "1m"})).await).await;
    assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));
    assert!(error["message"].as_str().unwrap().contains("settings file"), "{error}");
    assert_eq!(error_of(delete(&app, "from-file").await).await.0, 409);
    let schedule: Value = app.get("/schedules/from-file").await.json().await.unwrap();
    assert_eq!(
        (schedule["source"].as_str(), schedule["every"].as_str()),
        (Some("settings"), Some("1h"))
    );
    assert_eq!(app.post("/schedules/from-file/pause").await.status(), 200, "pausing is allowed");
    assert_eq!(app.post("/schedules/from-file/run").await.status(), 202, "firing is allowed");
}

#[tokio::test]
async fn schedules_live_in_redis_and_outlive_the_gateway() {
    let app = TestApp::spawn().await;
    assert_eq!(
        put(&app, "kept", &json!({"task": "noop", "cron": "0 */5 * * * *"})).await.status(),
        201
    );

    let stop = CancellationToken::new();
    let settings: GatewaySettings = app.settings.clone();
    let other = Application::build(settings, stop.clone()).await.unwrap();
    let address = format!("http://127.0.0.1:{}/schedules/kept", other.port());
    tokio::spawn(other.run_until_stopped());
    let schedule: Value = app.client.get(address).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (schedule["cron"].as_str(), schedule["timezone"].as_str()),
        (Some("0 */5 * * * *"), Some("UTC"))
    );
    stop.cancel();
}

#[tokio::test]
async fn redis_down_is_503_and_wrong_methods_are_405() {
    let mut app = TestApp::spawn_single().await;
    assert_eq!(error_of(app.post("/schedules").await).await.0, 405);
    app.redis.kill();
    let (status, error) = error_of(app.get("/schedules").await).await;
    assert_eq!((status, error["code"].as_str()), (503, Some("unavailable")));
    let (status, _) = error_of(put(&app, "x", &json!({"task": "noop", "every": "1m"})).await).await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn a_beat_fires_a_schedule_made_through_the_api_and_the_schedule_shows_it() {
    let app = TestApp::spawn().await;
    let stop = CancellationToken::new();
    let settings = celeriac_worker::BeatProcessSettings {
        common: app.settings.common.clone(),
        ..Default::default()
    };
    let beat = celeriac_worker::Beat::new(app.broker.clone(), celeriac_worker::BeatConfig::from_settings(&settings));
    tokio::spawn(beat.run(stop.clone()));
    assert_eq!(put(&app, "fast", &json!({"task": "noop", "every": "1s"})).await.status(), 201);
    let schedule = celeriac_testkit::eventually(std::time::Duration::from_secs(30), "the beat fires it", || async {
        let s: Value = app.get("/schedules/fast").await.json().await.ok()?;
        s["last_task_id"].is_string().then_some(s)
    })
    .await;
    let id = schedule["last_task_id"].as_str().unwrap();
    let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
    assert_eq!(record["task"], "noop");
    assert!(schedule["last_run"].is_string() && schedule["next_run"].is_string(), "{schedule}");
    stop.cancel();
}
