//! Queue limits with real worker processes: a rate limit of 100/s holds across four workers
//! of high concurrency, measured on the runs' own start times; a concurrency cap of 5 is
//! never exceeded across three workers (the runs' own start and end times never overlap more
//! than five deep), and the slots of a SIGKILLed worker come back, so every task still runs
//! and the cap ends with no slot in use; a cap of 2 per key holds for each of two customers
//! across three workers while both run side by side.

use std::time::Duration;

use celeriac::broker::{LimitsSource, QueueLimits};
use celeriac::{QueueName, TaskRecord, TaskState};
use celeriac_testkit::{RedisServer, eventually};
use serde_json::json;

use crate::common::Setup;

fn default_queue() -> QueueName {
    QueueName::parse("default").unwrap()
}

fn ms(at: Option<chrono::DateTime<chrono::Utc>>) -> i64 {
    at.expect("a run that ended has its times").timestamp_millis()
}

/// The most runs in progress at once, from their start and end times (an end at the same
/// millisecond as a start comes first: that slot was given back before it was taken again).
fn deepest_overlap(records: &[TaskRecord]) -> usize {
    let mut edges: Vec<(i64, i32)> = records
        .iter()
        .flat_map(|r| [(ms(r.started_at), 1), (ms(r.finished_at), -1)])
        .collect();
    edges.sort();
    let (mut now, mut deepest) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        deepest = deepest.max(now);
    }
    deepest as usize
}

#[tokio::test]
async fn a_rate_of_100_per_second_holds_across_four_workers() {
    let setup = Setup::new(RedisServer::start());
    let limits = QueueLimits {
        rate: Some("100/s".into()),
        ..Default::default()
    };
    setup.broker.set_limits(&default_queue(), &limits, LimitsSource::Api).await.unwrap();
    let ids = setup.enqueue_many("noop", &vec![json!(null); 900]).await;
    let _workers: Vec<_> = (0..4).map(|_| setup.worker(64)).collect();
    let records = setup.wait_all(&ids, TaskState::Success, Duration::from_secs(60)).await;
    let mut starts: Vec<i64> = records.iter().map(|r| ms(r.started_at)).collect();
    starts.sort();
    let first = starts[0];
    let mut per_second = vec![0usize; ((starts[starts.len() - 1] - first) / 1000 + 1) as usize];
    for s in &starts {
        per_second[((s - first) / 1000) as usize] += 1;
    }
    // The first second has the burst a quiet queue starts with (5); the last is partial.
    let full = &per_second[1..per_second.len() - 1];
    assert!(full.len() >= 6, "{per_second:?}");
    assert!(per_second[0] <= 105, "{per_second:?}");
    assert!(full.iter().all(|n| (95..=105).contains(n)), "per second: {per_second:?}");
    let steady: usize = full.iter().sum();
    let expected = 100 * full.len();
    assert!(
        steady.abs_diff(expected) <= expected / 50,
        "{steady} in {} s: {per_second:?}",
        full.len()
    );
}

#[tokio::test]
async fn a_concurrency_cap_of_5_holds_across_workers_and_a_killed_workers_slots_come_back() {
    let setup = Setup::new(RedisServer::start());
    let limits = QueueLimits {
        concurrency: Some(5),
        ..Default::default()
    };
    setup.broker.set_limits(&default_queue(), &limits, LimitsSource::Api).await.unwrap();
    let ids = setup.enqueue_many("sleep", &vec![json!({"ms": 200}); 60]).await;
    let mut doomed = setup.worker(16);
    let _others: Vec<_> = (0..2).map(|_| setup.worker(16)).collect();
    // Kill one worker while it holds slots.
    let broker = &setup.broker;
    eventually(Duration::from_secs(30), "the doomed worker runs tasks", || async {
        let workers = broker.live_workers().await.ok()?;
        let mine = workers.iter().find(|w| w.pid == doomed.pid())?;
        let held = broker.leased(&default_queue(), &mine.id).await.ok()?;
        (!held.is_empty()).then_some(())
    })
    .await;
    doomed.kill();
    let records = setup.wait_all(&ids, TaskState::Success, Duration::from_secs(120)).await;
    let deepest = deepest_overlap(&records);
    assert!(deepest <= 5, "{deepest} runs at once under a cap of 5");
    assert!(deepest >= 4, "the cap was used ({deepest} at most at once)");
    let view = broker.limits(&default_queue()).await.unwrap().unwrap();
    assert_eq!(view.running, Some(0), "every slot came back");
    setup.assert_invariants().await;
}

#[tokio::test]
async fn a_key_cap_holds_for_each_customer_across_workers() {
    let setup = Setup::new(RedisServer::start());
    let limits = QueueLimits {
        key_concurrency: Some(2),
        ..Default::default()
    };
    setup.broker.set_limits(&default_queue(), &limits, LimitsSource::Api).await.unwrap();
    let tasks: Vec<celeriac::broker::NewTask> = (0..40)
        .map(|i| {
            let mut t = celeriac::broker::NewTask::new(&default_queue(), "sleep", &json!({"ms": 150}));
            t.options.limit_key = Some(if i % 2 == 0 { "acme" } else { "globex" }.to_owned());
            t
        })
        .collect();
    setup.broker.enqueue(&default_queue(), &tasks, 0, None).await.unwrap();
    let _workers: Vec<_> = (0..3).map(|_| setup.worker(16)).collect();
    let ids: Vec<_> = tasks.iter().map(|t| t.id.clone()).collect();
    let records = setup.wait_all(&ids, TaskState::Success, Duration::from_secs(60)).await;
    for key in ["acme", "globex"] {
        let of_key: Vec<TaskRecord> = records
            .iter()
            .filter(|r| r.options.limit_key.as_deref() == Some(key))
            .cloned()
            .collect();
        assert_eq!(deepest_overlap(&of_key), 2, "{key}: at most 2 at once, and the cap was used");
    }
    assert!(deepest_overlap(&records) >= 3, "the two customers ran side by side");
    setup.assert_invariants().await;
}
