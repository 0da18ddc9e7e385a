//! Real fault injection: SIGKILL a worker mid-run, SIGTERM one during a run, restart Redis
//! under load. Every accepted task finishes; none that was not in flight runs twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use celeriac::TaskState;
use redis::AsyncCommands;
use serde_json::json;

use crate::common::Setup;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_tasks_come_back_and_run_once_more_without_using_a_retry() {
    let setup = Setup::new(celeriac_testkit::RedisServer::start());
    let ids = setup.enqueue_many("sleep", &vec![json!({"ms": 400}); 24]).await;
    let mut first = setup.worker(4);
    let first_id = setup.live_worker_id().await;
    let queue = celeriac::QueueName::parse("default").unwrap();
    let by_suffix = |suffix: &str| ids.iter().find(|id| id.suffix() == suffix).cloned();
    celeriac_testkit::eventually(DEADLINE, "the first worker runs tasks", || async {
        let leased = setup.broker.leased(&queue, &first_id).await.ok()?;
        for suffix in leased {
            let record = setup.broker.get(&by_suffix(&suffix)?).await.ok()??;
            if record.state == TaskState::Started {
                return Some(());
            }
        }
        None
    })
    .await;
    let first_clients = setup.other_clients().await;
    first.kill();
    // A request the worker had sent just before it died still runs: let Redis read it first.
    setup.wait_disconnected(&first_clients).await;
    // Leased at the kill: started (one delivery) or only claimed, its start not yet stored.
    let in_flight: HashSet<String> = setup.broker.leased(&queue, &first_id).await.unwrap().into_iter().collect();
    let mut deliveries_at_kill = HashMap::new();
    for suffix in &in_flight {
        let id = by_suffix(suffix).expect("a leased id is one of ours");
        deliveries_at_kill.insert(suffix.clone(), setup.record(&id).await.deliveries);
    }
    assert!(
        deliveries_at_kill.values().any(|&d| d == 1),
        "one had started: {deliveries_at_kill:?}"
    );

    let _second = setup.worker(4);
    let records = setup.wait_all(&ids, TaskState::Success, DEADLINE).await;
    for record in records {
        let at_kill = deliveries_at_kill.get(record.task_id.suffix());
        assert_eq!(record.attempt, 1, "a crash redelivery uses no retry: {record:?}");
        // Exactly one more delivery than it had at the kill: none is lost, none runs twice.
        let expected = at_kill.map_or(1, |d| d + 1);
        assert_eq!(record.deliveries, expected, "deliveries at the kill: {at_kill:?}; {record:?}");
    }
    setup.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_short_tasks_finish_and_gives_long_ones_back_untouched() {
    let setup = Setup::new(celeriac_testkit::RedisServer::start());
    let mut worker = setup.worker(3);
    let short = setup.enqueue("sleep", json!({"ms": 300})).await;
    let long = setup.enqueue_many("sleep", &[json!({"ms": 4000}), json!({"ms": 4000})]).await;
    for id in long.iter().chain([&short]) {
        setup.wait_state(id, TaskState::Started, DEADLINE).await;
    }
    worker.terminate();
    let status = worker
        .wait_exit(Duration::from_secs(30))
        .expect("the worker exits within the grace period");
    assert!(status.success(), "exit status {status:?}");

    assert_eq!(
        setup.record(&short).await.state,
        TaskState::Success,
        "finished within the grace period"
    );
    for id in &long {
        let record = setup.record(id).await;
        assert_eq!(
            (record.state, record.attempt, record.error),
            (TaskState::Pending, 1, None),
            "given back, not failed"
        );
    }
    assert!(setup.broker.live_workers().await.unwrap().is_empty(), "the worker unregistered");
    setup.assert_invariants().await;

    let _next = setup.worker(2);
    for record in setup.wait_all(&long, TaskState::Success, DEADLINE).await {
        assert_eq!((record.attempt, record.deliveries), (1, 2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_load_loses_no_accepted_task() {
    let mut setup = Setup::new(celeriac_testkit::RedisServer::start_persistent());
    let _worker = setup.worker(8);
    let mut accepted = Vec::new();
    for round in 0..40 {
        if round == 20 {
            setup.redis.restart();
        }
        let queue = celeriac::QueueName::parse("default").unwrap();
        let batch: Vec<_> = (0..50)
            .map(|i| celeriac::broker::NewTask::new(&queue, "add", &json!([round, i])))
            .collect();
        if setup.broker.enqueue(&queue, &batch, 0, None).await.is_ok() {
            accepted.extend(batch.into_iter().map(|t| t.id));
        }
    }
    assert!(accepted.len() >= 1000, "most batches were accepted: {}", accepted.len());
    setup.wait_all(&accepted, TaskState::Success, DEADLINE).await;
    setup.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_task_survives_worker_restarts_scheduled_once_and_runs_once() {
    let setup = Setup::new(celeriac_testkit::RedisServer::start());
    let queue = celeriac::QueueName::parse("default").unwrap();
    let mut task = celeriac::broker::NewTask::new(&queue, "add", &json!([20, 22]));
    task.due_ms = Some(setup.broker.clock().now_ms() + 3_000);
    setup.broker.enqueue(&queue, std::slice::from_ref(&task), 0, None).await.unwrap();
    let scheduled_key = setup.broker.keys().scheduled(&queue);
    for round in 0..3 {
        let mut worker = setup.worker(2);
        setup.live_worker_id().await;
        if round % 2 == 0 {
            worker.kill()
        } else {
            worker.terminate();
            worker.wait_exit(Duration::from_secs(30)).expect("exits");
        }
        let count: usize = setup.broker.connection().zcard(&scheduled_key).await.unwrap();
        assert_eq!(count, 1, "scheduled exactly once, in Redis, after restart {round}");
        assert_eq!(setup.record(&task.id).await.state, TaskState::Scheduled);
    }
    let _worker = setup.worker(2);
    let record = setup.wait_state(&task.id, TaskState::Success, DEADLINE).await;
    assert_eq!((record.deliveries, record.result), (1, Some(json!(42))));
    setup.assert_invariants().await;
}

/// `GET path` on the worker's probe port; the status code, or `None` when nothing answers.
fn probe(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_readiness_means_consuming_and_it_resumes_after_a_redis_outage() {
    let mut setup = Setup::new(celeriac_testkit::RedisServer::start_single());
    let port = celeriac_testkit::free_port();
    let bind = format!("127.0.0.1:{port}");
    let _worker = setup.worker_with(2, &[("CELERIAC__WORKER__HEALTH_BIND", &bind)]);
    let ready = |want: u16| async move {
        celeriac_testkit::eventually(DEADLINE, &format!("/readyz answers {want}"), || async move {
            (probe(port, "/readyz") == Some(want)).then_some(())
        })
        .await
    };
    ready(200).await;
    setup.redis.kill();
    ready(503).await;
    celeriac_testkit::eventually(DEADLINE, "alive while not ready", || async move {
        (probe(port, "/healthz") == Some(200)).then_some(())
    })
    .await;
    setup.redis.restart();
    ready(200).await;
    let id = setup.enqueue("add", json!([1, 2])).await;
    assert_eq!(setup.wait_state(&id, TaskState::Success, DEADLINE).await.result, Some(json!(3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_redis_outage_still_exits_and_loses_nothing() {
    let mut setup = Setup::new(celeriac_testkit::RedisServer::start_persistent());
    let mut worker = setup.worker(2);
    let id = setup.enqueue("sleep", json!({"ms": 500})).await;
    setup.wait_state(&id, TaskState::Started, DEADLINE).await;
    setup.redis.kill();
    worker.terminate();
    // Grace 1 s, then storing gives up after another grace period: well under this bound.
    let status = worker
        .wait_exit(Duration::from_secs(30))
        .expect("the worker exits although Redis is down");
    assert!(status.success(), "{status:?}");
    setup.redis.restart();
    let _next = setup.worker(2);
    let record = setup.wait_state(&id, TaskState::Success, DEADLINE).await;
    assert_eq!(record.attempt, 1, "the unstored run is not a failed attempt");
    setup.assert_invariants().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_that_hold_every_runtime_thread_keep_their_lease() {
    let setup = Setup::new(celeriac_testkit::RedisServer::start());
    // Two runtime threads, both held for three leases (lease 2 s) by tasks that never yield:
    // only a heartbeat outside the runtime can keep the lease alive.
    let busy = setup.worker_with(2, &[("TOKIO_WORKER_THREADS", "2")]);
    let ids = setup
        .enqueue_many(
            "sleep",
            &[json!({"ms": 6000, "blocking": true}), json!({"ms": 6000, "blocking": true})],
        )
        .await;
    let holder = setup.live_worker_id().await;
    for id in &ids {
        let record = setup.wait_state(id, TaskState::Started, DEADLINE).await;
        assert_eq!(record.worker.as_deref(), Some(holder.as_str()));
    }
    // A second worker whose reaper would take the tasks back if the busy worker's lease lapsed.
    let _watcher = setup.worker(2);
    for record in setup.wait_all(&ids, TaskState::Success, DEADLINE).await {
        assert_eq!(
            (record.deliveries, record.worker.as_deref()),
            (1, Some(holder.as_str())),
            "ran once, by the busy worker"
        );
    }
    drop(busy);
}
