//! The gateway binary stops gracefully on SIGTERM: requests in flight (even a long poll) get
//! their answer, then the process exits 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use celeriac_testkit::{RedisServer, free_port, unique_namespace};
use serde_json::{Value, json};

#[tokio::test]
async fn sigterm_answers_requests_in_flight_and_exits_zero() {
    let redis = RedisServer::start();
    let port = free_port();
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_celeriac-api"))
        .env("CELERIAC_CONFIG_DIR", "/nonexistent")
        .env("CELERIAC__REDIS__URL", redis.url())
        .env("CELERIAC__REDIS__NAMESPACE", unique_namespace())
        .env("CELERIAC__HTTP__BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    celeriac::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    celeriac_testkit::eventually(Duration::from_secs(60), "the gateway listens", || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status() == 200)
    })
    .await;
    let accepted: Value = client
        .post(format!("{base}/tasks"))
        .json(&json!({"task": "noop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["task_id"].as_str().unwrap().to_owned();
    // No worker runs: this long poll would wait 60 s, unless the gateway is stopping.
    let reads_before = record_reads(&redis).await;
    let poll = tokio::spawn({
        let (client, url) = (client.clone(), format!("{base}/tasks/{id}?wait=60"));
        async move { client.get(url).send().await.unwrap() }
    });
    // The poll must be in the gateway's hands before its listener closes: its handler reads
    // the task's record first, and nothing else reads one here.
    celeriac_testkit::eventually(Duration::from_secs(30), "the long poll reads the task", || async {
        (record_reads(&redis).await > reads_before).then_some(())
    })
    .await;
    let started = Instant::now();
    celeriac_testkit::signal(gateway.id(), celeriac_testkit::Signal::SIGTERM);
    let response = poll.await.unwrap();
    assert_eq!(response.status(), 200, "the request in flight is answered");
    assert_eq!(response.json::<Value>().await.unwrap()["state"], "PENDING");
    let status = loop {
        if let Some(status) = gateway.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the gateway did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the long poll did not hold the stop for its 60 s"
    );
}

/// How many task records Redis has been asked for (`HGETALL`s, as `Broker::get` reads one),
/// from the command statistics of every node (one, or each node of a Cluster).
async fn record_reads(redis: &RedisServer) -> u64 {
    let mut reads = 0;
    for port in redis.ports() {
        let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
        reads += stats
            .lines()
            .find_map(|line| line.strip_prefix("cmdstat_hgetall:calls=")?.split(',').next()?.parse::<u64>().ok())
            .unwrap_or(0);
    }
    reads
}
