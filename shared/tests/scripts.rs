//! The Lua transitions, driven through their typed Rust calls against a real redis-server.

use std::time::Duration;

use celeriac::broker::{Ack, Claim, EnqueueOutcome, Idempotency, ListFilter, NewTask, Outcome, Started, Verdict};
use celeriac::{Broker, BrokerError, QueueName, TaskError, TaskState};
use celeriac_testkit::{RedisServer, unique_namespace};
use redis::AsyncCommands;
use serde_json::json;

const LEASE: Duration = Duration::from_secs(30);

fn broker(redis: &RedisServer) -> Broker {
    Broker::connect(&redis.url(), &unique_namespace(), Duration::from_secs(3600)).unwrap()
}

fn queue() -> QueueName {
    QueueName::parse("default").unwrap()
}

async fn claim_ids(broker: &Broker, worker: &str, max: usize) -> Vec<String> {
    match broker
        .claim(&queue(), worker, max, LEASE, &celeriac::broker::new_claim_token())
        .await
        .unwrap()
    {
        Claim::Ids(ids) => ids,
        Claim::Paused => panic!("paused"),
    }
}

async fn run_one(broker: &Broker, worker: &str) -> celeriac::broker::Delivery {
    let ids = claim_ids(broker, worker, 1).await;
    match broker.start(&queue(), worker, &ids).await.unwrap().pop() {
        Some(Started::Run(d)) => d,
        other => panic!("expected a run, got {other:?}"),
    }
}

/// Enqueues one task and starts it on worker `w1`.
async fn enqueue_and_start(broker: &Broker, name: &str, args: &serde_json::Value) -> (NewTask, celeriac::broker::Delivery) {
    let task = NewTask::new(&queue(), name, args);
    broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap();
    (task, run_one(broker, "w1").await)
}

/// Stores `verdict` for the run `d` by `worker`, as its acker would.
async fn finish_run(broker: &Broker, worker: &str, d: &celeriac::broker::Delivery, verdict: Verdict) -> Vec<Ack> {
    let outcome = Outcome {
        id: d.id.clone(),
        delivery: d.delivery,
        verdict,
    };
    broker.finish(&queue(), worker, &[outcome]).await.unwrap()
}

/// Lets `worker`'s lease on the queue run out (as after a crash or a stall), then runs the
/// reaper's recovery: how many of its tasks went back.
async fn expire_and_recover(broker: &Broker, worker: &str) -> Option<usize> {
    broker
        .connection()
        .zadd::<_, _, _, ()>(broker.keys().leases(&queue()), worker, 0)
        .await
        .unwrap();
    broker.recover_expired(&queue(), worker).await.unwrap()
}

/// `n` echo tasks on the queue, with arguments 0, 1, ...
fn echoes(n: usize) -> Vec<NewTask> {
    (0..n).map(|i| NewTask::new(&queue(), "echo", &json!(i))).collect()
}

async fn state(broker: &Broker, id: &celeriac::TaskId) -> TaskState {
    broker.get(id).await.unwrap().unwrap().state
}

#[tokio::test]
async fn a_task_goes_from_pending_to_started_to_success_with_a_ttl() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let task = NewTask::new(&queue(), "add", &json!([1, 2]));
    assert_eq!(
        broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap(),
        EnqueueOutcome::Stored
    );
    assert_eq!(state(&broker, &task.id).await, TaskState::Pending);

    let d = run_one(&broker, "w1").await;
    assert_eq!((d.name.as_str(), d.args.as_str(), d.delivery, d.retries), ("add", "[1,2]", 1, 0));
    let record = broker.get(&task.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.worker.as_deref()), (TaskState::Started, Some("w1")));

    let stored = broker
        .finish(
            &queue(),
            "w1",
            &[Outcome {
                id: task.id.clone(),
                delivery: 1,
                verdict: Verdict::Success("3".into()),
            }],
        )
        .await
        .unwrap();
    assert_eq!(stored, [Ack::Stored]);
    let record = broker.get(&task.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.result), (TaskState::Success, Some(json!(3))));
    let ttl: i64 = broker.connection().ttl(broker.keys().task(&task.id)).await.unwrap();
    assert!(ttl > 0 && ttl <= 3600, "ttl {ttl}");
    assert!(broker.leased(&queue(), "w1").await.unwrap().is_empty());
}

#[tokio::test]
async fn scripts_flushed_from_redis_are_loaded_again() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    // As after a Redis restart: the server has none of the scripts.
    let flush = || async {
        redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async::<()>(&mut broker.connection())
            .await
            .unwrap()
    };
    flush().await;
    let (task, d) = enqueue_and_start(&broker, "echo", &json!(1)).await;
    flush().await;
    assert_eq!(finish_run(&broker, "w1", &d, Verdict::Success("1".into())).await, [Ack::Stored]);
    assert_eq!(state(&broker, &task.id).await, TaskState::Success);
}

#[tokio::test]
async fn claims_take_at_most_what_was_asked_oldest_first() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let tasks = echoes(5);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let first = claim_ids(&broker, "w1", 3).await;
    assert_eq!(first, tasks[..3].iter().map(|t| t.id.suffix().to_owned()).collect::<Vec<_>>());
    assert_eq!(claim_ids(&broker, "w2", 10).await.len(), 2);
    assert!(claim_ids(&broker, "w3", 10).await.is_empty());
}

#[tokio::test]
async fn a_run_that_lost_its_lease_cannot_overwrite_the_newer_run() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let task = NewTask::new(&queue(), "echo", &json!(1));
    broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap();
    let old = run_one(&broker, "old").await;
    // The old worker's lease is recovered (as after a crash), and another worker runs it.
    assert_eq!(expire_and_recover(&broker, "old").await, Some(1));
    assert_eq!(state(&broker, &task.id).await, TaskState::Pending);
    let new = run_one(&broker, "new").await;
    assert_eq!(new.delivery, 2);
    assert_eq!(new.retries, 0, "a crash redelivery does not use the retry budget");

    let late = Verdict::Failure(TaskError::permanent("late"));
    assert_eq!(finish_run(&broker, "old", &old, late).await, [Ack::Refused]);
    let stale_progress = celeriac::Progress {
        current: 1,
        total: 2,
        message: None,
    };
    assert!(
        !broker
            .report_progress(&task.id, "old", old.delivery, &stale_progress)
            .await
            .unwrap()
    );
    assert_eq!(finish_run(&broker, "new", &new, Verdict::Success("1".into())).await, [Ack::Stored]);
    assert_eq!(state(&broker, &task.id).await, TaskState::Success);
}

#[tokio::test]
async fn a_worker_that_claims_its_lost_task_again_fences_its_own_older_run() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let (task, old) = enqueue_and_start(&broker, "echo", &json!(1)).await;
    // w1 stalls past its lease: the reaper gives the task back, and w1 itself takes it again.
    assert_eq!(expire_and_recover(&broker, "w1").await, Some(1));
    let new = run_one(&broker, "w1").await;
    assert_eq!((new.id.clone(), new.delivery), (task.id.clone(), 2));
    // The id is leased to w1 again, but for delivery 2: the first run is refused.
    let late = Verdict::Failure(TaskError::permanent("late"));
    assert_eq!(finish_run(&broker, "w1", &old, late).await, [Ack::Refused]);
    let progress = celeriac::Progress {
        current: 1,
        total: 2,
        message: None,
    };
    assert!(!broker.report_progress(&task.id, "w1", old.delivery, &progress).await.unwrap());
    assert!(broker.report_progress(&task.id, "w1", new.delivery, &progress).await.unwrap());
    assert_eq!(finish_run(&broker, "w1", &new, Verdict::Success("1".into())).await, [Ack::Stored]);
    assert_eq!(state(&broker, &task.id).await, TaskState::Success);
}

#[tokio::test]
async fn the_in_flight_hash_is_a_hash_table_and_holds_only_ids_for_readers() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let tasks = echoes(3);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let ids = claim_ids(&broker, "w1", 3).await;
    let key = broker.keys().inflight(&queue(), "w1");
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(&key)
        .query_async(&mut broker.connection())
        .await
        .unwrap();
    assert_eq!(encoding, "hashtable", "a listpack would make each token lookup a scan");
    let mut leased = broker.leased(&queue(), "w1").await.unwrap();
    leased.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(leased, expected);
    assert!(broker.audit().await.unwrap().is_clean());
    // Given back, the lease ends and the hash goes.
    assert_eq!(broker.requeue_own(&queue(), "w1", &ids).await.unwrap(), 3);
    let exists: bool = broker.connection().exists(&key).await.unwrap();
    assert!(!exists);
    assert!(broker.expired_leases(&queue()).await.unwrap().is_empty());
    let leases: Vec<String> = broker.connection().zrange(broker.keys().leases(&queue()), 0, -1).await.unwrap();
    assert!(leases.is_empty(), "{leases:?}");
}

#[tokio::test]
async fn a_crashed_worker_of_an_earlier_build_gets_its_tasks_back() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let (task, _) = enqueue_and_start(&broker, "echo", &json!(1)).await;
    // As an earlier build left it: the id in a plain set under the old key, the task STARTED.
    let mut conn = broker.connection();
    let suffix = task.id.suffix().to_owned();
    conn.del::<_, ()>(broker.keys().inflight(&queue(), "w1")).await.unwrap();
    conn.sadd::<_, _, ()>(broker.keys().legacy_inflight(&queue(), "old"), &suffix)
        .await
        .unwrap();
    assert_eq!(expire_and_recover(&broker, "old").await, Some(1));
    assert_eq!(state(&broker, &task.id).await, TaskState::Pending);
    let exists: bool = conn.exists(broker.keys().legacy_inflight(&queue(), "old")).await.unwrap();
    assert!(!exists);
    assert_eq!(run_one(&broker, "w2").await.delivery, 2);
}

#[tokio::test]
async fn recovery_leaves_a_live_lease_alone() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    broker
        .enqueue(&queue(), &[NewTask::new(&queue(), "echo", &json!(1))], 0, None)
        .await
        .unwrap();
    run_one(&broker, "alive").await;
    assert_eq!(broker.expired_leases(&queue()).await.unwrap(), Vec::<String>::new());
    assert_eq!(broker.recover_expired(&queue(), "alive").await.unwrap(), None);
    assert_eq!(broker.leased(&queue(), "alive").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_graceful_requeue_puts_the_task_first_in_line_without_using_a_retry() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let a = NewTask::new(&queue(), "echo", &json!("a"));
    let b = NewTask::new(&queue(), "echo", &json!("b"));
    broker.enqueue(&queue(), &[a.clone(), b.clone()], 0, None).await.unwrap();
    let d = run_one(&broker, "w1").await;
    assert_eq!(d.id, a.id);
    assert_eq!(broker.requeue_own(&queue(), "w1", &[a.id.suffix().to_owned()]).await.unwrap(), 1);
    let again = run_one(&broker, "w2").await;
    assert_eq!((again.id.clone(), again.delivery, again.retries), (a.id.clone(), 2, 0));
    use TaskState::*;
    assert_eq!(
        logged_states(&broker, &a.id).await,
        (vec![Some(Started), Some(Pending), Some(Started)], true),
        "the first start is logged before the requeue"
    );
}

#[tokio::test]
async fn retries_wait_in_the_scheduled_set_and_are_promoted_when_due() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let (task, d) = enqueue_and_start(&broker, "fail", &json!({})).await;
    let due = broker.clock().now_ms() + 60_000;
    let retry = Verdict::Retry {
        error: TaskError::retryable("flaky"),
        due_ms: due,
    };
    assert_eq!(finish_run(&broker, "w1", &d, retry).await, [Ack::Stored]);
    let record = broker.get(&task.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.attempt), (TaskState::Retry, 2));
    assert_eq!(record.error.unwrap().message, "flaky");
    assert_eq!(record.eta.unwrap().timestamp_millis(), due);

    assert_eq!(broker.promote_due(&queue(), 100).await.unwrap(), 0, "not due yet");
    broker.clock().advance(Duration::from_secs(61));
    assert_eq!(broker.promote_due(&queue(), 100).await.unwrap(), 1);
    assert_eq!(broker.promote_due(&queue(), 100).await.unwrap(), 0, "moved once only");
    let second = run_one(&broker, "w1").await;
    assert_eq!((second.retries, second.delivery), (1, 2));
}

#[tokio::test]
async fn a_failure_is_dead_lettered() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let (task, d) = enqueue_and_start(&broker, "fail", &json!({})).await;
    finish_run(&broker, "w1", &d, Verdict::Failure(TaskError::permanent("no").with_kind("Fail"))).await;
    let dead: Vec<String> = broker.connection().zrange(broker.keys().dead(&queue()), 0, -1).await.unwrap();
    assert_eq!(dead, [task.id.suffix()]);
    assert_eq!(state(&broker, &task.id).await, TaskState::Failure);
}

#[tokio::test]
async fn delayed_tasks_are_scheduled_and_expired_ones_never_start() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let now = broker.clock().now_ms();
    let mut later = NewTask::new(&queue(), "echo", &json!(1));
    later.due_ms = Some(now + 3_600_000);
    let mut expiring = NewTask::new(&queue(), "echo", &json!(2));
    expiring.expires_ms = Some(now + 1_000);
    broker.enqueue(&queue(), &[later.clone(), expiring.clone()], 0, None).await.unwrap();
    assert_eq!(state(&broker, &later.id).await, TaskState::Scheduled);

    broker.clock().advance(Duration::from_secs(2));
    let ids = claim_ids(&broker, "w1", 10).await;
    assert_eq!(ids, [expiring.id.suffix()], "the scheduled task is not pending");
    match broker.start(&queue(), "w1", &ids).await.unwrap().as_slice() {
        [Started::Skip { reason, .. }] => assert_eq!(reason, "expired"),
        other => panic!("{other:?}"),
    }
    let record = broker.get(&expiring.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.error.unwrap().kind.as_str()), (TaskState::Revoked, "Expired"));
    assert!(broker.leased(&queue(), "w1").await.unwrap().is_empty());
}

#[tokio::test]
async fn idempotency_keys_return_the_first_task_and_detect_reuse() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let key = |fp: &str| Idempotency {
        key: "order-17".into(),
        fingerprint: fp.into(),
        ttl_secs: 60,
    };
    let first = NewTask::new(&queue(), "echo", &json!(1));
    assert_eq!(
        broker
            .enqueue(&queue(), std::slice::from_ref(&first), 0, Some(&key("abc")))
            .await
            .unwrap(),
        EnqueueOutcome::Stored
    );
    let repeat = NewTask::new(&queue(), "echo", &json!(1));
    let outcome = broker
        .enqueue(&queue(), std::slice::from_ref(&repeat), 0, Some(&key("abc")))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        EnqueueOutcome::Replayed {
            task_id: first.id.clone(),
            same_request: true
        }
    );
    assert!(broker.get(&repeat.id).await.unwrap().is_none(), "nothing new stored");
    let other = broker
        .enqueue(&queue(), &[NewTask::new(&queue(), "echo", &json!(2))], 0, Some(&key("xyz")))
        .await
        .unwrap();
    assert_eq!(
        other,
        EnqueueOutcome::Replayed {
            task_id: first.id,
            same_request: false
        }
    );
}

#[tokio::test]
async fn a_full_queue_refuses_the_whole_batch_and_duplicate_ids_are_refused() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let two = echoes(2);
    broker.enqueue(&queue(), &two, 3, None).await.unwrap();
    let more = echoes(2);
    match broker.enqueue(&queue(), &more, 3, None).await {
        Err(BrokerError::QueueFull { depth: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(broker.get(&more[0].id).await.unwrap().is_none(), "nothing of the batch was stored");
    match broker.enqueue(&queue(), &two[..1], 0, None).await {
        Err(BrokerError::Duplicate(id)) => assert_eq!(id, two[0].id),
        other => panic!("{other:?}"),
    }
    // A batch with one taken id among new ones: that id is named, and nothing is stored.
    let fresh = NewTask::new(&queue(), "echo", &json!(9));
    match broker.enqueue(&queue(), &[fresh.clone(), two[1].clone()], 0, None).await {
        Err(BrokerError::Duplicate(id)) => assert_eq!(id, two[1].id),
        other => panic!("{other:?}"),
    }
    assert!(broker.get(&fresh.id).await.unwrap().is_none(), "nothing of the batch was stored");
}

#[tokio::test]
async fn a_paused_queue_gives_nothing() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    broker
        .enqueue(&queue(), &[NewTask::new(&queue(), "echo", &json!(1))], 0, None)
        .await
        .unwrap();
    broker
        .connection()
        .set::<_, _, ()>(broker.keys().paused(&queue()), 1)
        .await
        .unwrap();
    assert_eq!(broker.claim(&queue(), "w1", 5, LEASE, "t1").await.unwrap(), Claim::Paused);
}

#[tokio::test]
async fn unreachable_redis_is_an_error_not_a_hang() {
    let mut redis = RedisServer::start_single();
    let broker = broker(&redis);
    redis.kill();
    let task = NewTask::new(&queue(), "echo", &json!(1));
    assert!(matches!(
        broker.enqueue(&queue(), &[task], 0, None).await,
        Err(BrokerError::Redis(_))
    ));
}

#[tokio::test]
async fn a_poison_record_is_dead_lettered_and_the_claim_goes_on() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let poison = NewTask::new(&queue(), "echo", &json!(1));
    let good = NewTask::new(&queue(), "echo", &json!(2));
    let mut conn = broker.connection();
    conn.hset::<_, _, _, ()>(broker.keys().task(&poison.id), "s", "PENDING")
        .await
        .unwrap();
    conn.lpush::<_, _, ()>(broker.keys().pending(&queue()), poison.id.suffix())
        .await
        .unwrap();
    broker.enqueue(&queue(), std::slice::from_ref(&good), 0, None).await.unwrap();
    let ids = claim_ids(&broker, "w1", 10).await;
    let started = broker.start(&queue(), "w1", &ids).await.unwrap();
    assert!(
        matches!(&started[0], Started::Skip { reason, .. } if reason == "poison"),
        "{started:?}"
    );
    assert!(matches!(&started[1], Started::Run(d) if d.id == good.id));
    let record = broker.get(&poison.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.error.unwrap().kind.as_str()), (TaskState::Failure, "Poison"));
    let dead: Vec<String> = conn.zrange(broker.keys().dead(&queue()), 0, -1).await.unwrap();
    assert_eq!(dead, [poison.id.suffix()]);
    let stats = broker.queue_stats().await.unwrap();
    assert_eq!(stats[0].failed, 1, "a poison record counts as failed");
}

#[tokio::test]
async fn a_task_stored_in_the_layout_before_the_spec_field_still_runs() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let old = NewTask::new(&queue(), "echo", &json!(1));
    let created = broker.clock().now_ms() - 5_000;
    let fields = [
        ("s", "PENDING".to_owned()),
        ("n", "echo".to_owned()),
        ("a", "[1]".to_owned()),
        ("c", created.to_string()),
        ("o", r#"{"max_retries":2}"#.to_owned()),
    ];
    let mut conn = broker.connection();
    conn.hset_multiple::<_, _, _, ()>(broker.keys().task(&old.id), &fields)
        .await
        .unwrap();
    conn.lpush::<_, _, ()>(broker.keys().pending(&queue()), old.id.suffix())
        .await
        .unwrap();

    let d = run_one(&broker, "w1").await;
    assert_eq!((d.id, d.name.as_str(), d.args.as_str()), (old.id.clone(), "echo", "[1]"));
    assert_eq!(d.options.max_retries, Some(2));
    assert!(
        d.waited.is_some_and(|w| w >= Duration::from_secs(5)),
        "waited since its creation: {:?}",
        d.waited
    );
    let record = broker.get(&old.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.task.as_str()), (TaskState::Started, "echo"));
}

#[tokio::test]
async fn a_task_name_with_a_line_break_is_refused_and_nothing_is_stored() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let bad = NewTask::new(&queue(), "echo\nnoop", &json!(1));
    let refused = broker.enqueue(&queue(), std::slice::from_ref(&bad), 0, None).await;
    assert!(matches!(refused, Err(BrokerError::InvalidTask(_))), "{refused:?}");
    assert!(broker.get(&bad.id).await.unwrap().is_none());
}

#[tokio::test]
async fn the_listing_cap_drops_the_oldest_and_a_walk_goes_on_past_it() {
    let redis = RedisServer::start();
    let broker = broker(&redis).with_listing_max(4);
    let tasks = echoes(7);
    for task in &tasks[..6] {
        broker.enqueue(&queue(), std::slice::from_ref(task), 0, None).await.unwrap();
    }
    let filter = ListFilter {
        queue: Some(queue()),
        ..Default::default()
    };
    let ids = |page: &celeriac::broker::TaskPage| page.tasks.iter().map(|r| r.task_id.clone()).collect::<Vec<_>>();
    let first = broker.list_tasks(&filter, 2, 100, None).await.unwrap();
    assert_eq!(
        ids(&first),
        [tasks[5].id.clone(), tasks[4].id.clone()],
        "the newest two of the four kept"
    );
    // One more enqueue drops another of the oldest while a client walks the pages.
    broker.enqueue(&queue(), &tasks[6..], 0, None).await.unwrap();
    let second = broker.list_tasks(&filter, 2, 100, first.next).await.unwrap();
    assert_eq!(ids(&second), [tasks[3].id.clone()], "what is left of the older ones, once");
    assert!(second.next.is_none());
}

#[tokio::test]
async fn a_purge_revokes_every_pending_task_and_leaves_others_alone() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let tasks = echoes(1234);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let mut later = NewTask::new(&queue(), "echo", &json!("later"));
    later.due_ms = Some(broker.clock().now_ms() + 60_000);
    broker.enqueue(&queue(), std::slice::from_ref(&later), 0, None).await.unwrap();
    let running = run_one(&broker, "w1").await;
    assert_eq!(broker.purge(&queue()).await.unwrap(), 1233);
    assert!(claim_ids(&broker, "w2", 10).await.is_empty());
    let record = broker.get(&tasks[500].id).await.unwrap().unwrap();
    assert_eq!((record.state, record.error.unwrap().kind.as_str()), (TaskState::Revoked, "Purged"));
    assert_eq!(
        state(&broker, &later.id).await,
        TaskState::Scheduled,
        "scheduled tasks are not pending"
    );
    assert_eq!(
        state(&broker, &running.id).await,
        TaskState::Started,
        "running tasks are not pending"
    );
    assert_eq!(broker.purge(&queue()).await.unwrap(), 0);
    let report = broker.audit().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[tokio::test]
async fn a_claim_asked_again_with_its_token_returns_the_same_ids() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let tasks = echoes(5);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let first = broker.claim(&queue(), "w1", 3, LEASE, "token-a").await.unwrap();
    // The reply was lost: asking again with the same token gives the same ids, nothing more.
    assert_eq!(broker.claim(&queue(), "w1", 3, LEASE, "token-a").await.unwrap(), first);
    assert_eq!(broker.leased(&queue(), "w1").await.unwrap().len(), 3);
    let next = broker.claim(&queue(), "w1", 3, LEASE, "token-b").await.unwrap();
    assert_eq!(next, Claim::Ids(tasks[3..].iter().map(|t| t.id.suffix().to_owned()).collect()));
    // A token that only starts like the last one is a new claim (nothing is left to take).
    assert_eq!(broker.claim(&queue(), "w1", 3, LEASE, "token").await.unwrap(), Claim::Ids(vec![]));
}

#[tokio::test]
async fn enqueue_counts_the_tasks_it_stores_once_per_call_and_nothing_it_refuses() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let enqueued = |b: &Broker| {
        let b = b.clone();
        async move {
            let n: Option<u64> = b.connection().hget(b.keys().stats(&queue()), "enqueued").await.unwrap();
            n.unwrap_or(0)
        }
    };
    let three = echoes(3);
    let idem = Idempotency {
        key: "k".into(),
        fingerprint: "f".into(),
        ttl_secs: 60,
    };
    broker.enqueue(&queue(), &three, 0, Some(&idem)).await.unwrap();
    assert_eq!(enqueued(&broker).await, 3);
    let repeat = echoes(3);
    broker.enqueue(&queue(), &repeat, 0, Some(&idem)).await.unwrap();
    assert_eq!(enqueued(&broker).await, 3, "a replay stores nothing");
    let full = broker
        .enqueue(&queue(), &[NewTask::new(&queue(), "echo", &json!(9))], 3, None)
        .await;
    assert!(matches!(full, Err(BrokerError::QueueFull { .. })), "{full:?}");
    assert!(matches!(
        broker.enqueue(&queue(), &three[..1], 0, None).await,
        Err(BrokerError::Duplicate(_))
    ));
    assert_eq!(enqueued(&broker).await, 3, "refusals store nothing");
    let mut later = NewTask::new(&queue(), "echo", &json!(4));
    later.due_ms = Some(broker.clock().now_ms() + 60_000);
    broker.enqueue(&queue(), &[later], 0, None).await.unwrap();
    assert_eq!(enqueued(&broker).await, 4, "scheduled tasks count too");
    let stats = broker.queue_stats().await.unwrap();
    assert_eq!(stats.len(), 1);
    let s = &stats[0];
    assert_eq!(
        (s.queue.as_str(), s.enqueued, s.pending, s.scheduled, s.dead),
        ("default", 4, 3, 1, 0)
    );
}

#[tokio::test]
async fn the_traceparent_and_the_wait_reach_the_worker_at_start() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut traced = NewTask::new(&queue(), "echo", &json!(1));
    traced.traceparent = celeriac::trace::TraceParent::parse(traceparent);
    let plain = NewTask::new(&queue(), "echo", &json!(2));
    broker.enqueue(&queue(), &[traced.clone(), plain.clone()], 0, None).await.unwrap();
    let record = broker.get(&traced.id).await.unwrap().unwrap();
    assert_eq!(record.trace_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(broker.get(&plain.id).await.unwrap().unwrap().trace_id, None);

    broker.clock().advance(Duration::from_millis(1500));
    let first = run_one(&broker, "w1").await;
    let second = run_one(&broker, "w1").await;
    assert_eq!(first.id, traced.id, "oldest first");
    assert_eq!(first.traceparent.as_ref().map(|t| t.to_string()).as_deref(), Some(traceparent));
    assert_eq!(second.traceparent, None);
    for d in [&first, &second] {
        let waited = d.waited.expect("known for a stored task");
        assert!(
            waited >= Duration::from_millis(1500) && waited < Duration::from_secs(60),
            "{waited:?}"
        );
    }
}

/// The states of a task's logged events, oldest first, and whether their ids count up by one.
async fn logged_states(broker: &Broker, id: &celeriac::TaskId) -> (Vec<Option<TaskState>>, bool) {
    let events = broker.task_events(id, 0).await.unwrap();
    let consecutive = events.windows(2).all(|w| w[1].id == w[0].id + 1);
    (events.iter().map(|e| e.state).collect(), consecutive)
}

#[tokio::test]
async fn every_transition_is_logged_in_order_with_consecutive_ids() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let (task, d) = enqueue_and_start(&broker, "fail", &json!({})).await;
    let progress = celeriac::Progress {
        current: 1,
        total: 2,
        message: Some("half way".into()),
    };
    assert!(broker.report_progress(&task.id, "w1", d.delivery, &progress).await.unwrap());
    let retry = Verdict::Retry {
        error: TaskError::retryable("flaky"),
        due_ms: broker.clock().now_ms(),
    };
    finish_run(&broker, "w1", &d, retry).await;
    broker.promote_due(&queue(), 10).await.unwrap();
    let d = run_one(&broker, "w1").await;
    finish_run(&broker, "w1", &d, Verdict::Success("1".into())).await;

    let (states, consecutive) = logged_states(&broker, &task.id).await;
    use TaskState::*;
    assert_eq!(
        states,
        [Some(Started), None, Some(Retry), Some(Pending), Some(Started), Some(Success)]
    );
    assert!(consecutive);
    let events = broker.task_events(&task.id, 0).await.unwrap();
    assert_eq!(events[1].progress, Some(progress));
    assert_eq!(broker.last_event_id(&task.id).await.unwrap(), events[5].id);
    assert_eq!(
        broker.task_events(&task.id, events[3].id).await.unwrap(),
        events[4..],
        "resume after an id"
    );
}

#[tokio::test]
async fn a_failure_retried_by_hand_keeps_its_ending_in_the_log() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let (task, d) = enqueue_and_start(&broker, "fail", &json!({})).await;
    finish_run(&broker, "w1", &d, Verdict::Failure(TaskError::permanent("no"))).await;
    let ended = broker.get(&task.id).await.unwrap().unwrap().finished_at;
    assert!(ended.is_some());
    assert_eq!(broker.last_event_id(&task.id).await.unwrap(), 2);
    broker.retry(&task.id).await.unwrap();
    let d = run_one(&broker, "w1").await;
    finish_run(&broker, "w1", &d, Verdict::Success("1".into())).await;
    let (states, consecutive) = logged_states(&broker, &task.id).await;
    use TaskState::*;
    assert_eq!(states, [Some(Started), Some(Failure), Some(Pending), Some(Started), Some(Success)]);
    assert!(consecutive);
    let events = broker.task_events(&task.id, 0).await.unwrap();
    assert_eq!(
        Some(events[1].at),
        ended.map(|t| t.timestamp_millis()),
        "the failure keeps its time"
    );
    assert_eq!(broker.last_event_id(&task.id).await.unwrap(), 5);
}

#[tokio::test]
async fn a_start_asked_again_logs_both_starts() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let task = NewTask::new(&queue(), "echo", &json!(1));
    broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap();
    let ids = claim_ids(&broker, "w1", 1).await;
    // The first start's reply was lost: the worker asks again, which is a newer delivery.
    broker.start(&queue(), "w1", &ids).await.unwrap();
    let Some(celeriac::broker::Started::Run(d)) = broker.start(&queue(), "w1", &ids).await.unwrap().pop() else {
        panic!("the second start runs it")
    };
    assert_eq!(d.delivery, 2);
    assert_eq!(finish_run(&broker, "w1", &d, Verdict::Success("1".into())).await, [Ack::Stored]);
    use TaskState::*;
    assert_eq!(
        logged_states(&broker, &task.id).await,
        (vec![Some(Started), Some(Started), Some(Success)], true)
    );
}

#[tokio::test]
async fn a_flood_of_progress_keeps_the_newest_events_within_a_few_kilobytes() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let (task, d) = enqueue_and_start(&broker, "report", &json!({})).await;
    for current in 1..=300 {
        let progress = celeriac::Progress {
            current,
            total: 300,
            message: Some("working on it".into()),
        };
        broker.report_progress(&task.id, "w1", d.delivery, &progress).await.unwrap();
    }
    finish_run(&broker, "w1", &d, Verdict::Success("1".into())).await;

    let history: String = broker.connection().hget(broker.keys().task(&task.id), "h").await.unwrap();
    assert!(history.len() <= 4096, "{} bytes", history.len());
    let events = broker.task_events(&task.id, 0).await.unwrap();
    assert!(events.len() > 20 && events.len() < 300, "{} events kept", events.len());
    assert!(events.windows(2).all(|w| w[1].id == w[0].id + 1), "a gapless tail");
    let last = events.last().unwrap();
    assert_eq!((last.id, last.state), (302, Some(TaskState::Success)));
    assert_eq!(events[events.len() - 2].progress.as_ref().map(|p| p.current), Some(300));
}

/// The queue's `revoked` counter.
#[tokio::test]
async fn a_run_revoked_while_it_ran_ends_revoked_whatever_it_reports() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let (task, d) = enqueue_and_start(&broker, "echo", &json!(1)).await;
    let (other, other_run) = enqueue_and_start(&broker, "echo", &json!(2)).await;
    broker.revoke(&task.id, false, "not wanted").await.unwrap();
    let outcomes = [d, other_run].map(|d| Outcome {
        id: d.id,
        delivery: d.delivery,
        verdict: Verdict::Success("1".into()),
    });
    assert_eq!(broker.finish(&queue(), "w1", &outcomes).await.unwrap(), [Ack::Stored, Ack::Stored]);
    let record = broker.get(&task.id).await.unwrap().unwrap();
    assert_eq!(record.state, TaskState::Revoked);
    assert_eq!(record.error.map(|e| e.message), Some("not wanted".into()));
    assert_eq!(
        logged_states(&broker, &task.id).await,
        (vec![Some(TaskState::Started), Some(TaskState::Revoked)], true)
    );
    assert_eq!(state(&broker, &other.id).await, TaskState::Success, "only the revoked one");
    let revoking: bool = broker.connection().exists(broker.keys().revoking(&queue())).await.unwrap();
    assert!(!revoking, "settled, it leaves the revoking set");
}

async fn revoked_count(broker: &Broker) -> u64 {
    let stats = broker.queue_stats().await.unwrap();
    stats.iter().find(|s| s.queue == "default").map_or(0, |s| s.revoked)
}

#[tokio::test]
async fn every_way_of_ending_revoked_counts_in_the_queues_counter() {
    let redis = RedisServer::start();
    let broker = broker(&redis);
    let now = broker.clock().now_ms();

    // Revoked while queued.
    let queued = NewTask::new(&queue(), "echo", &json!(1));
    broker.enqueue(&queue(), std::slice::from_ref(&queued), 0, None).await.unwrap();
    broker.revoke(&queued.id, false, "not needed").await.unwrap();
    assert_eq!(revoked_count(&broker).await, 1, "revoked while queued");

    // Purged.
    let purged = echoes(2);
    broker.enqueue(&queue(), &purged, 0, None).await.unwrap();
    assert_eq!(broker.purge(&queue()).await.unwrap(), 2);
    assert_eq!(revoked_count(&broker).await, 3, "purged");

    // Expired while scheduled (at promotion), and expired while pending (at start).
    let mut scheduled = NewTask::new(&queue(), "echo", &json!(3));
    (scheduled.due_ms, scheduled.expires_ms) = (Some(now + 60_000), Some(now + 30_000));
    let mut pending = NewTask::new(&queue(), "echo", &json!(4));
    pending.expires_ms = Some(now + 1_000);
    broker
        .enqueue(&queue(), &[scheduled.clone(), pending.clone()], 0, None)
        .await
        .unwrap();
    broker.clock().advance(Duration::from_secs(61));
    let ids = claim_ids(&broker, "w1", 10).await;
    broker.start(&queue(), "w1", &ids).await.unwrap();
    assert_eq!(revoked_count(&broker).await, 4, "expired at start");
    assert_eq!(broker.promote_due(&queue(), 10).await.unwrap(), 0);
    assert_eq!(revoked_count(&broker).await, 5, "expired at promotion");

    // Revoked while running, and its worker stopped before storing an outcome.
    let running = NewTask::new(&queue(), "sleep", &json!({"ms": 10_000}));
    broker.enqueue(&queue(), std::slice::from_ref(&running), 0, None).await.unwrap();
    let d = run_one(&broker, "w2").await;
    broker.revoke(&running.id, true, "stop it").await.unwrap();
    broker.requeue_own(&queue(), "w2", &[d.id.suffix().to_owned()]).await.unwrap();
    assert_eq!(state(&broker, &running.id).await, TaskState::Revoked);
    assert_eq!(revoked_count(&broker).await, 6, "revoked while running, then given back");
    let revoking: bool = broker.connection().exists(broker.keys().revoking(&queue())).await.unwrap();
    assert!(!revoking, "given back revoked, it leaves the revoking set");

    for id in [&queued.id, &purged[0].id, &scheduled.id, &pending.id] {
        assert_eq!(state(&broker, id).await, TaskState::Revoked);
    }
}

#[tokio::test]
async fn an_enqueue_whose_reply_is_lost_is_asked_again_and_stored_once() {
    let redis = RedisServer::start_single();
    let proxy = celeriac_testkit::ReplyCutter::start(redis.port());
    let broker = Broker::connect(&proxy.url(), &unique_namespace(), Duration::from_secs(3600)).unwrap();
    // The scripts are loaded first, so the requests cut below run a script.
    broker
        .enqueue(&queue(), &[NewTask::new(&queue(), "warm_up", &json!(0))], 0, None)
        .await
        .unwrap();
    claim_ids(&broker, "w0", 1).await;

    // A batch whose reply is lost: asked again with the same ids, it is found stored (the
    // script ran, and refuses the ids it holds): one answer, one copy of each.
    let batch = [
        NewTask::new(&queue(), "lost_reply_batch", &json!(1)),
        NewTask::new(&queue(), "lost_reply_batch", &json!(2)),
    ];
    proxy.cut_reply_to(b"lost_reply_batch");
    assert_eq!(broker.enqueue(&queue(), &batch, 0, None).await.unwrap(), EnqueueOutcome::Stored);
    assert!(broker.get(&batch[0].id).await.unwrap().is_some(), "the script ran");

    // With an idempotency key, asking again meets the key the lost attempt stored.
    let keyed = NewTask::new(&queue(), "lost_reply_keyed", &json!(3));
    let idempotency = Idempotency {
        key: "k1".into(),
        fingerprint: "f1".into(),
        ttl_secs: 60,
    };
    proxy.cut_reply_to(b"lost_reply_keyed");
    let outcome = broker
        .enqueue(&queue(), std::slice::from_ref(&keyed), 0, Some(&idempotency))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        EnqueueOutcome::Replayed {
            task_id: keyed.id.clone(),
            same_request: true
        }
    );
    assert_eq!(proxy.cuts(), 2);
    let mut pending = claim_ids(&broker, "w1", 10).await;
    pending.sort();
    let mut expected: Vec<String> = batch.iter().chain([&keyed]).map(|t| t.id.suffix().to_owned()).collect();
    expected.sort();
    assert_eq!(pending, expected, "each task is queued exactly once");
}
