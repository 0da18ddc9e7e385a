//! Recovery in seconds: a worker SIGKILLed mid-task and restarted at once on the same host
//! gets its task run again within 3 s (its lease is 30 s), exactly once more; a worker
//! registered under another host id is left to its lease, never taken for dead.

use std::time::{Duration, Instant};

use celeriac::{QueueName, TaskId, TaskState};
use celeriac_testkit::eventually;
use serde_json::json;

use crate::common::{Setup, WorkerProcess};

const LONG_LEASE: &str = "30";

/// Waits until `id` has been taken `deliveries` times, up to `deadline`.
async fn wait_deliveries(setup: &Setup, id: &TaskId, deliveries: u32, deadline: Duration, what: &str) {
    eventually(deadline, what, || async {
        setup
            .broker
            .get(id)
            .await
            .ok()
            .flatten()
            .filter(|r| r.deliveries >= deliveries)
            .map(|_| ())
    })
    .await;
}

/// Starts a worker (one slot) and waits until it runs `id`; returns it with its id.
async fn worker_running(setup: &Setup, id: &TaskId, env: &[(&str, &str)]) -> (WorkerProcess, String) {
    let worker = setup.worker_with(1, env);
    let record = setup.wait_state(id, TaskState::Started, Duration::from_secs(60)).await;
    let worker_id = record.worker.expect("a started task names its worker");
    // Its registry entry (written by the first heartbeat) is what proves it dead later.
    eventually(Duration::from_secs(30), "the worker registers", || async {
        let live = setup.broker.live_workers().await.ok()?;
        live.iter().any(|w| w.id == worker_id).then_some(())
    })
    .await;
    (worker, worker_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_and_restarted_runs_it_again_within_three_seconds_once() {
    let setup = Setup::new(celeriac_testkit::RedisServer::start());
    let lease = [("CELERIAC__WORKER__LEASE_SECS", LONG_LEASE)];
    let id = setup.enqueue("sleep", json!({"ms": 800})).await;
    let (mut first, first_id) = worker_running(&setup, &id, &lease).await;

    first.kill();
    let killed = Instant::now();
    let _second = setup.worker_with(1, &lease);
    wait_deliveries(&setup, &id, 2, Duration::from_secs(3), "the task runs again within 3 s of the kill").await;
    let rerun = killed.elapsed();
    eprintln!("kill -9 to the task running again (lease {LONG_LEASE} s): {rerun:?}");

    let record = setup.wait_state(&id, TaskState::Success, Duration::from_secs(30)).await;
    assert_eq!(record.deliveries, 2, "run once more, not twice: {record:?}");
    assert_eq!(record.attempt, 1, "a crash redelivery uses no retry: {record:?}");
    assert_ne!(record.worker.as_deref(), Some(first_id.as_str()));
    let live = setup.broker.live_workers().await.unwrap();
    assert!(
        live.iter().all(|w| w.id != first_id),
        "the dead worker's entry is dropped: {live:?}"
    );
    setup.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_worker_on_another_host_id_is_left_to_its_lease() {
    let setup = Setup::new(celeriac_testkit::RedisServer::start());
    let queue = QueueName::parse("default").unwrap();
    // A worker on "another host" (its host id differs), with a 6 s lease.
    let elsewhere_task = setup.enqueue("sleep", json!({"ms": 600})).await;
    let (mut elsewhere, elsewhere_id) = worker_running(
        &setup,
        &elsewhere_task,
        &[("HOSTNAME", "another-host"), ("CELERIAC__WORKER__LEASE_SECS", "6")],
    )
    .await;
    // And one on this host, whose prompt recovery shows when the new worker has looked.
    let local_task = setup.enqueue("sleep", json!({"ms": 600})).await;
    let (mut local, _) = worker_running(&setup, &local_task, &[("CELERIAC__WORKER__LEASE_SECS", LONG_LEASE)]).await;

    elsewhere.kill();
    local.kill();
    let killed = Instant::now();
    let _third = setup.worker_with(1, &[("CELERIAC__WORKER__LEASE_SECS", LONG_LEASE)]);
    wait_deliveries(
        &setup,
        &local_task,
        2,
        Duration::from_secs(3),
        "the same host's dead worker's task runs again",
    )
    .await;

    let leased = setup.broker.leased(&queue, &elsewhere_id).await.unwrap();
    assert_eq!(
        leased,
        vec![elsewhere_task.suffix().to_owned()],
        "still leased to the other host's worker"
    );
    assert_eq!(setup.record(&elsewhere_task).await.deliveries, 1);

    // Its lease is the fallback: the task runs again once the lease has run out.
    wait_deliveries(
        &setup,
        &elsewhere_task,
        2,
        Duration::from_secs(30),
        "the lease runs out and the task runs again",
    )
    .await;
    let by_lease = killed.elapsed();
    eprintln!("kill -9 to the task running again by lease alone (lease 6 s): {by_lease:?}");
    assert!(by_lease > Duration::from_millis(3500), "not before the lease ran out: {by_lease:?}");
    for id in [&elsewhere_task, &local_task] {
        let record = setup.wait_state(id, TaskState::Success, Duration::from_secs(30)).await;
        assert_eq!(record.deliveries, 2, "{record:?}");
    }
    setup.assert_invariants().await;
}
