//! The HTTP yardstick (`celeriac-http-yardstick`) answers its two routes as `bench/compare`
//! reads them, against a real redis-server, and refuses a bad option at start in one line.

use std::process::Command;
use std::time::Duration;

use celeriac_testkit::{KilledOnDrop, RedisServer, eventually, free_port, stderr_of_failed_run};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_celeriac-http-yardstick");

#[tokio::test]
async fn it_stores_an_email_and_reads_it_back() {
    celeriac::tls::install_crypto_provider(); // reqwest's TLS, as the bench's own client needs it
    // One node: the yardstick speaks to a single Redis.
    let redis = RedisServer::start_single();
    let base = format!("http://127.0.0.1:{}", free_port());
    let bind = base.trim_start_matches("http://").to_owned();
    let _yardstick = KilledOnDrop(
        Command::new(BINARY)
            .args(["--bind", &bind, "--redis-url", &redis.url()])
            .spawn()
            .expect("start the yardstick"),
    );
    let client = reqwest::Client::new();
    eventually(Duration::from_secs(20), "the yardstick answers", || async {
        client.get(format!("{base}/tasks/none")).send().await.ok().map(|r| r.status())
    })
    .await;

    let email = json!({"to": "ada@example.com", "subject": "hello", "body": "hi"});
    let accepted = client.post(format!("{base}/emails")).json(&email).send().await.unwrap();
    assert_eq!(accepted.status(), 202);
    let accepted: Value = accepted.json().await.unwrap();
    let id = accepted["task_id"].as_str().unwrap();
    assert!(id.starts_with("emails-"), "{accepted}");
    assert_eq!(accepted["status_url"], format!("/tasks/{id}"));

    let record: Value = client.get(format!("{base}/tasks/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(record["fields"]["s"], "P", "{record}");
    let payload: Value = serde_json::from_str(record["fields"]["p"].as_str().unwrap()).unwrap();
    assert_eq!(payload, email);

    let missing_body = client
        .post(format!("{base}/emails"))
        .json(&json!({"to": "a@b.c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing_body.status(), 422);
    let unknown = client.get(format!("{base}/tasks/emails-none")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}

#[test]
fn a_bad_option_ends_it_at_start_naming_the_option() {
    let run = |args: &[&str]| stderr_of_failed_run(BINARY, args);
    let open = run(&["--bind", "0.0.0.0:8100", "--redis-url", "redis://127.0.0.1:1"]);
    assert!(open.contains("--bind \"0.0.0.0:8100\" must be a loopback address"), "{open}");
    let closed = format!("redis://127.0.0.1:{}", free_port());
    let unreachable = run(&["--bind", &format!("127.0.0.1:{}", free_port()), "--redis-url", &closed]);
    assert!(
        unreachable.contains(&format!("connecting to Redis at --redis-url {closed}")),
        "{unreachable}"
    );
}
