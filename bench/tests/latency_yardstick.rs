//! The latency yardstick (`celeriac-latency-yardstick`) works as `celeriac-bench` reads it,
//! against a real redis-server: each task it takes is published as started, then stored as
//! done and published again, and none is left in flight; a bad option ends it at start in
//! one line naming the option.

use std::process::Command;
use std::time::Duration;

use celeriac_testkit::{KilledOnDrop, RedisServer, eventually, free_port, stderr_of_failed_run};
use futures::StreamExt;

const BINARY: &str = env!("CARGO_BIN_EXE_celeriac-latency-yardstick");
const PREFIX: &str = "test:{floor}:";
const CHANNEL: &str = "test:events";

#[tokio::test]
async fn it_starts_and_finishes_each_task_publishing_both() {
    // One node: the yardstick speaks to a single Redis.
    let redis = RedisServer::start_single();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut events = client.get_async_pubsub().await.unwrap();
    events.subscribe(CHANNEL).await.unwrap();
    let mut events = events.into_on_message();
    let _yardstick = KilledOnDrop(
        Command::new(BINARY)
            .args(["--redis-url", &redis.url(), "--prefix", PREFIX, "--channel", CHANNEL])
            .spawn()
            .expect("start the yardstick"),
    );

    // Enqueued as the bench does: each task's hash, then the ids on the list.
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ids = ["a1", "a2", "a3"];
    let mut enqueue = redis::pipe();
    for id in ids {
        enqueue
            .hset_multiple(format!("{PREFIX}t:{id}"), &[("s", "P"), ("p", "null")])
            .ignore();
    }
    enqueue.lpush(format!("{PREFIX}pending"), &ids).ignore();
    let () = enqueue.query_async(&mut conn).await.unwrap();

    // Each id is published twice, started then done, in batches of the ids taken together.
    let mut heard: Vec<String> = Vec::new();
    while heard.len() < 2 * ids.len() {
        let msg = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("events within 10 s")
            .unwrap();
        let payload: String = msg.get_payload().unwrap();
        heard.extend(payload.split(' ').map(str::to_owned));
    }
    for id in ids {
        assert_eq!(heard.iter().filter(|h| *h == id).count(), 2, "{id} in {heard:?}");
        let (state, worker): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(format!("{PREFIX}t:{id}"))
            .arg("s")
            .arg("w")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(state.as_deref(), Some("OK"), "{id}");
        assert_eq!(worker.as_deref(), Some("w1"), "{id}");
    }
    eventually(Duration::from_secs(5), "nothing left in flight or pending", || {
        let mut conn = conn.clone();
        async move {
            let (inflight, pending): (u64, u64) = redis::pipe()
                .scard(format!("{PREFIX}inflight"))
                .llen(format!("{PREFIX}pending"))
                .query_async(&mut conn)
                .await
                .ok()?;
            (inflight == 0 && pending == 0).then_some(())
        }
    })
    .await;
}

#[test]
fn a_bad_option_ends_it_at_start_naming_the_option() {
    let run = |args: &[&str]| stderr_of_failed_run(BINARY, args);
    let closed = format!("redis://127.0.0.1:{}", free_port());
    let untagged = run(&["--redis-url", &closed, "--prefix", "bench:", "--channel", "c"]);
    assert!(untagged.contains("--prefix \"bench:\" must hold a hash tag"), "{untagged}");
    let unreachable = run(&["--redis-url", &closed, "--prefix", PREFIX, "--channel", "c"]);
    assert!(
        unreachable.contains(&format!("connecting to Redis at --redis-url {closed}")),
        "{unreachable}"
    );
}
