//! The one enqueue path: every task option a caller may set reaches the stored task the same
//! way from `POST /tasks`, `POST /emails` (under `options`), a workflow member and a schedule.
//! A new option in `TaskOptions` fails this test until it has a sample value here, and then
//! must reach the record from each producer.

use celeriac::TaskOptions;

use crate::common::TestApp;
use serde_json::{Map, Value, json};

/// A valid value of each option, not its default, so the record shows it came from the call.
fn sample(field: &str) -> Value {
    match field {
        "max_retries" => json!(7),
        "time_limit" => json!(50.0),
        "soft_time_limit" => json!(40.0),
        "retry_delay" => json!(3.0),
        "retry_backoff" => json!(false),
        "retry_delay_max" => json!(30.0),
        "retry_jitter" => json!(false),
        "priority" => json!(3),
        "unique_for" => json!(600.0),
        "unique_key" => json!("sample"),
        "unique_until" => json!("period"),
        "debounce" => json!(30.0),
        "debounce_key" => json!("sample"),
        "limit_key" => json!("customer-7"),
        "callback_url" => json!("http://127.0.0.1:9/never-called"),
        // The names POST /emails would add, so its record holds exactly these.
        "tags" => json!({"kind": "email", "to_domain": "example.com", "user_id": "42"}),
        other => panic!("a new task option `{other}`: give it a sample value here"),
    }
}

/// Every option, in two sets: a task is either unique or debounced, so each set leaves out the
/// other's options (together they cover every option).
fn every_option() -> [Map<String, Value>; 2] {
    let without = |left_out: &str| {
        TaskOptions::FIELDS
            .iter()
            .filter(|f| !f.starts_with(left_out))
            .map(|f| ((*f).to_owned(), sample(f)))
            .collect()
    };
    [without("debounce"), without("unique_")]
}

async fn accepted_id(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    body["task_id"].as_str().unwrap().to_owned()
}

async fn stored_options(app: &TestApp, id: &str) -> Value {
    let record: Value = app.get(&format!("/tasks/{id}")).await.json().await.unwrap();
    record["options"].clone()
}

#[tokio::test]
async fn every_task_option_reaches_the_record_from_each_producer() {
    let app = TestApp::spawn().await;
    for (set, every) in every_option().into_iter().enumerate() {
        let options = Value::Object(every.clone());

        let mut task = json!({"task": "noop", "args": null});
        task.as_object_mut().unwrap().extend(every);
        let id = accepted_id(app.post_json("/tasks", &task).await).await;
        assert_eq!(stored_options(&app, &id).await, options, "POST /tasks");

        let email = json!({"to": "ada@example.com", "subject": "s", "body": "b", "options": options});
        let id = accepted_id(app.post_json("/emails", &email).await).await;
        assert_eq!(stored_options(&app, &id).await, options, "POST /emails");

        let workflow = json!({"chain": [{"task": "noop", "options": options}]});
        let response = app.post_json("/workflows", &workflow).await;
        assert_eq!(response.status(), 202);
        let started: Value = response.json().await.unwrap();
        let id = started["tasks"][0]["task_id"].as_str().unwrap().to_owned();
        assert_eq!(stored_options(&app, &id).await, options, "a workflow member: {started}");

        let schedule = json!({"task": "noop", "every": "1h", "options": options});
        let path = format!("/schedules/every-option-{set}");
        let response = app.client.put(app.url(&path)).json(&schedule).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.text().await.unwrap());
        let id = accepted_id(app.post_json(&format!("{path}/run"), &json!({})).await).await;
        assert_eq!(stored_options(&app, &id).await, options, "a schedule");
    }
}

#[tokio::test]
async fn an_option_of_the_wrong_type_is_refused_naming_it_from_each_producer() {
    let app = TestApp::spawn().await;
    for field in TaskOptions::FIELDS {
        // a string option's wrong type is a number
        let bad = if ["unique_key", "unique_until", "debounce_key", "limit_key", "callback_url"].contains(field) {
            json!(5)
        } else {
            json!("not-a-number-or-bool")
        };
        let mut task = json!({"task": "noop"});
        task[field] = bad.clone();
        let email = json!({"to": "ada@example.com", "subject": "s", "body": "b", "options": {*field: bad}});
        for (path, body, named) in [
            ("/tasks", task, (*field).to_owned()),
            ("/emails", email, format!("options.{field}")),
        ] {
            let response = app.post_json(path, &body).await;
            assert_eq!(response.status(), 422, "{path} {body}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["error"]["field"], json!(named), "{path}: {error}");
        }
    }
}
