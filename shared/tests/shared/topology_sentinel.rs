//! The broker through Redis Sentinel (a master, a replica, three sentinels): it finds the
//! master by name, works (scripts, blocking waits, events), follows a failover to the new
//! master, and fails at start in one line on a master name no sentinel knows.

use std::time::Duration;

use celeriac::broker::{Claim, NewTask, Outcome, QueueWaiter, Started, TaskEvents, Verdict, new_claim_token};
use celeriac::settings::RedisSettings;
use celeriac::{Broker, QueueName, TaskState};
use celeriac_testkit::{RedisSentinel, eventually, unique_namespace};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_secs(3600);

fn settings(url: &str) -> RedisSettings {
    RedisSettings {
        url: url.into(),
        namespace: unique_namespace(),
        ..RedisSettings::default()
    }
}

/// Enqueues one task on `queue` and runs it to success through the broker.
async fn run_one(broker: &Broker, queue: &QueueName) -> celeriac::TaskId {
    let task = NewTask::new(queue, "echo", &json!(1));
    broker.enqueue(queue, std::slice::from_ref(&task), 0, None).await.unwrap();
    let Claim::Ids(ids) = broker
        .claim(queue, "w1", 1, Duration::from_secs(30), &new_claim_token())
        .await
        .unwrap()
    else {
        panic!("paused")
    };
    let Some(Started::Run(d)) = broker.start(queue, "w1", &ids).await.unwrap().pop() else {
        panic!("no run")
    };
    let outcome = Outcome {
        id: d.id,
        delivery: d.delivery,
        verdict: Verdict::Success("1".into()),
    };
    broker.finish(queue, "w1", &[outcome]).await.unwrap();
    task.id
}

#[tokio::test]
async fn the_broker_works_through_sentinel_and_follows_a_failover() {
    let mut set = RedisSentinel::start();
    let broker = Broker::open(&settings(&set.url()), TTL).await.unwrap();
    let queue = QueueName::parse("default").unwrap();
    let stop = CancellationToken::new();
    let events = TaskEvents::spawn(&broker, stop.clone());
    let mut rx = events.subscribe();
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();

    let mut waiter = QueueWaiter::new(&broker, &queue);
    let wait = tokio::spawn(async move { waiter.wait_for_work(Duration::from_secs(10)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = run_one(&broker, &queue).await;
    assert!(tokio::time::timeout(Duration::from_secs(5), wait).await.unwrap().unwrap().unwrap());
    assert_eq!(broker.get(&id).await.unwrap().unwrap().state, TaskState::Success);
    let wanted = id.to_string();
    eventually(Duration::from_secs(5), "the task's events", || {
        let seen = std::iter::from_fn(|| rx.try_recv().ok()).any(|m| *m == *wanted);
        async move { seen.then_some(()) }
    })
    .await;

    // The master dies; the sentinels promote the replica and the same broker carries on.
    set.master.kill();
    let failover = std::time::Instant::now();
    let id = eventually(Duration::from_secs(30), "the broker works on the promoted replica", || {
        let broker = broker.clone();
        let queue = queue.clone();
        async move {
            let task = NewTask::new(&queue, "echo", &json!(2));
            broker
                .enqueue(&queue, std::slice::from_ref(&task), 0, None)
                .await
                .ok()
                .map(|_| task.id)
        }
    })
    .await;
    eprintln!("enqueues failed for {:?} after the master was killed", failover.elapsed());
    assert_eq!(broker.get(&id).await.unwrap().unwrap().state, TaskState::Pending);
    stop.cancel();
}

#[tokio::test]
async fn an_unknown_master_name_fails_at_start_in_one_line() {
    let set = RedisSentinel::start();
    let error = Broker::open(&settings(&set.url_for("nosuchmaster")), TTL)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"nosuchmaster\"") && error.contains("no sentinel knows this master name"),
        "{error}"
    );
    assert!(!error.contains('\n'), "{error}");
}
