//! The built-in tasks end to end: `POST /emails` reaches a real SMTP server (the test's sink),
//! `POST /reports/{user_id}` builds a file that `GET /reports/{task_id}/file` downloads.

use serde_json::{Value, json};

use crate::common::TestApp;

async fn app_with_smtp() -> (TestApp, celeriac_testkit::SmtpSink) {
    let sink = celeriac_testkit::SmtpSink::start().await;
    let port = sink.port();
    let app = TestApp::spawn().await;
    let mut settings = app.worker_settings();
    settings.smtp.port = port;
    let registry = celeriac_worker::tasks::builtin_registry(&settings).unwrap();
    app.start_worker(registry).await;
    (app, sink)
}

#[tokio::test]
async fn an_email_is_delivered_to_the_smtp_server() {
    let (app, sink) = app_with_smtp().await;
    let response = app
        .post_json(
            "/emails",
            &json!({"to": "ada@example.com", "subject": "Welcome aboard", "body": "Thanks for signing up."}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["queue"], "emails");
    let record = app.wait_terminal(accepted["task_id"].as_str().unwrap()).await;
    assert_eq!(record["state"], "SUCCESS", "{record}");
    let mails = sink.wait_for(1, std::time::Duration::from_secs(30)).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["ada@example.com"]);
    assert_eq!(mails[0].subject(), "Welcome aboard");
    assert_eq!(mails[0].body(), "Thanks for signing up.");
    assert!(
        record["result"]["response"].as_str().unwrap().contains(&mails[0].queue_id),
        "the server's reply is recorded: {record}"
    );
}

#[tokio::test]
async fn a_refused_recipient_is_a_failure_naming_the_reason() {
    let (app, _sink) = app_with_smtp().await;
    let response = app
        .post_json("/emails", &json!({"to": "bob@reject.test", "subject": "Hi", "body": "Hello"}))
        .await;
    let id = response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned();
    let record = app.wait_terminal(&id).await;
    assert_eq!(
        (record["state"].as_str(), record["error"]["kind"].as_str()),
        (Some("FAILURE"), Some("SmtpRejected"))
    );
    assert!(
        record["error"]["message"].as_str().unwrap().contains("Recipient address rejected"),
        "{record}"
    );
    assert_eq!(record["attempt"], 1, "a permanent refusal is not retried");
}

#[tokio::test]
async fn a_report_is_built_with_progress_and_downloaded() {
    let (app, _sink) = app_with_smtp().await;
    for (body, content_type, magic) in [
        (None, "text/csv", "note"), // no archive here: a note that no history is kept
        (Some(json!({"format": "pdf"})), "application/pdf", "%PDF-1.4"),
    ] {
        let request = app.client.post(app.url("/reports/42"));
        let request = match &body {
            Some(b) => request.json(b),
            None => request,
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 202, "body {body:?}");
        let id = response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned();
        let record = app.wait_terminal(&id).await;
        assert_eq!(record["state"], "SUCCESS", "{record}");
        assert_eq!(
            record["progress"]["current"], record["progress"]["total"],
            "progress reached the end: {record}"
        );
        let file = app.get(&format!("/reports/{id}/file")).await;
        assert_eq!(file.status(), 200);
        assert!(file.headers()["content-type"].to_str().unwrap().starts_with(content_type));
        let bytes = file.bytes().await.unwrap();
        assert_eq!(bytes.len() as u64, record["result"]["size_bytes"].as_u64().unwrap());
        assert!(
            String::from_utf8_lossy(&bytes).to_lowercase().starts_with(&magic.to_lowercase()),
            "{magic}"
        );
    }
}

#[tokio::test]
async fn a_report_that_is_not_ready_is_409_and_other_tasks_are_404() {
    let app = TestApp::spawn().await;
    let response = app.post_json("/reports/7", &json!({})).await;
    let id = response.json::<Value>().await.unwrap()["task_id"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("/reports/{id}/file")).await.status(), 409);
    let other = app.enqueue("noop", json!(null)).await;
    assert_eq!(app.get(&format!("/reports/{other}/file")).await.status(), 404);
}
