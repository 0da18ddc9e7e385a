//! The chaos command: enqueue tasks for a while as workers are SIGKILLed, SIGTERMed and
//! restarted and Redis restarts (with AOF), then report accepted, finished, lost and
//! redelivered counts. Slow, so not part of the suite:
//!
//!     scripts/chaos.sh            (CHAOS_SECS=30 by default)

use std::time::{Duration, Instant};

use celeriac::broker::NewTask;
use celeriac::{QueueName, TaskState};
use serde_json::json;

use crate::common::{Setup, WorkerProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: run with scripts/chaos.sh"]
async fn chaos() {
    let secs: u64 = std::env::var("CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let mut setup = Setup::new(celeriac_testkit::RedisServer::start_persistent());
    let queue = QueueName::parse("default").unwrap();
    let mut workers: Vec<WorkerProcess> = (0..3).map(|_| setup.worker(8)).collect();
    let (mut kills, mut terms, mut redis_restarts, mut refused) = (0, 0, 0, 0);
    let mut accepted = Vec::new();
    let started = Instant::now();
    let mut next_fault = Instant::now() + Duration::from_millis(fastrand::u64(300..1500));
    while started.elapsed() < Duration::from_secs(secs) {
        let batch: Vec<NewTask> = (0..20)
            .map(|i| NewTask::new(&queue, "sleep", &json!({"ms": fastrand::u64(0..=20) + i % 2})))
            .collect();
        match setup.broker.enqueue(&queue, &batch, 0, None).await {
            Ok(_) => accepted.extend(batch.into_iter().map(|t| t.id)),
            Err(_) => refused += 1,
        }
        if Instant::now() >= next_fault {
            match fastrand::u8(0..10) {
                0..=4 => {
                    let i = fastrand::usize(..workers.len());
                    workers[i].kill();
                    workers[i] = setup.worker(8);
                    kills += 1;
                }
                5..=7 => {
                    let i = fastrand::usize(..workers.len());
                    workers[i].terminate();
                    workers[i].wait_exit(Duration::from_secs(15));
                    workers[i] = setup.worker(8);
                    terms += 1;
                }
                _ => {
                    setup.redis.restart();
                    redis_restarts += 1;
                }
            }
            next_fault = Instant::now() + Duration::from_millis(fastrand::u64(300..1500));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut finished, mut lost, mut redelivered) = (0, 0, 0);
    for id in &accepted {
        loop {
            let record = setup.broker.get(id).await.ok().flatten();
            match record {
                Some(r) if r.state == TaskState::Success => {
                    finished += 1;
                    if r.deliveries > 1 {
                        redelivered += 1;
                    }
                    break;
                }
                _ if Instant::now() > deadline => {
                    lost += 1;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    println!(
        "chaos for {secs}s: {kills} SIGKILLs, {terms} SIGTERMs, {redis_restarts} Redis restarts; {refused} enqueue batches refused while Redis was down"
    );
    println!(
        "accepted {}, finished {finished}, lost {lost}, redelivered after a kill {redelivered}",
        accepted.len()
    );
    setup.assert_invariants().await;
    assert_eq!(lost, 0, "no accepted task may be lost");
}
