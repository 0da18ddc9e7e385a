//! Rate limits and concurrency caps, enforced by claim.lua across every worker: a rate of
//! 100/s hands out 100 tasks a second however many workers claim (on the broker's clock,
//! moved by the test, over a simulated minute); a queue without limits beside it is not held
//! up; a cap of 5 is never exceeded and every way a lease ends (success, retry, a task
//! settled at start, a graceful stop, a crashed worker's reap) gives its slot back and wakes
//! a worker waiting for one; a cap set while tasks run counts them; settings never replace
//! what an operator set; a task deferred by its key's rate keeps its earlier events.

use std::time::Duration;

use celeriac::broker::{Claim, Hold, LimitsOutcome, LimitsSource, NewTask, QueueLimits, QueueWaiter, Verdict};
use celeriac::{Broker, QueueName, TaskState};
use redis::AsyncCommands;
use serde_json::json;

use super::{LEASE, claim_ids, echoes, expire_and_recover, finish_run, logged_states, queue};
use crate::common::redis_and_broker;

fn rate(rate: &str, burst: Option<u32>) -> QueueLimits {
    QueueLimits {
        rate: Some(rate.into()),
        burst,
        ..Default::default()
    }
}

fn key_rate(rate: &str) -> QueueLimits {
    QueueLimits {
        key_rate: Some(rate.into()),
        ..Default::default()
    }
}

fn cap(n: u32) -> QueueLimits {
    QueueLimits {
        concurrency: Some(n),
        ..Default::default()
    }
}

async fn claim(broker: &Broker, queue: &QueueName, worker: &str, max: usize) -> Claim {
    broker
        .claim(queue, worker, max, LEASE, &celeriac::broker::new_claim_token())
        .await
        .unwrap()
}

async fn running(broker: &Broker) -> u64 {
    broker.limits(&queue()).await.unwrap().unwrap().running.unwrap()
}

#[tokio::test]
async fn a_rate_limit_hands_out_its_rate_across_four_workers_over_a_simulated_minute() {
    let (_redis, broker) = redis_and_broker();
    for chunk in echoes(7_000).chunks(1_000) {
        broker.enqueue(&queue(), chunk, 0, None).await.unwrap();
    }
    broker.set_limits(&queue(), &rate("100/s", None), LimitsSource::Api).await.unwrap();
    // A queue without limits, beside it: never held up.
    let free = QueueName::parse("unlimited").unwrap();
    let tasks: Vec<NewTask> = (0..500).map(|i| NewTask::new(&free, "echo", &json!(i))).collect();
    broker.enqueue(&free, &tasks, 0, None).await.unwrap();
    let mut per_second = vec![0usize; 60];
    let mut waits = 0;
    // Four workers claim in turn every 7 ms of the broker's clock (a step the 10 ms interval
    // does not divide), each as much as it likes.
    let start = broker.clock().now_ms();
    let mut elapsed = 0;
    while elapsed < 60_000 {
        for w in ["w1", "w2", "w3", "w4"] {
            match claim(&broker, &queue(), w, 50).await {
                Claim::Ids(ids) => {
                    assert!(ids.len() <= 5, "at most the burst (the tasks of 50 ms) at once");
                    per_second[elapsed as usize / 1000] += ids.len();
                }
                Claim::Held(Hold::Rate { wait }) => {
                    assert!(wait <= Duration::from_millis(10), "{wait:?}");
                    waits += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        broker.clock().advance(Duration::from_millis(7));
        elapsed = broker.clock().now_ms() - start;
    }
    // The first second also has the burst a quiet queue starts with; then 100 a second.
    assert!((100..=105).contains(&per_second[0]), "first second: {}", per_second[0]);
    let steady: usize = per_second[1..].iter().sum();
    assert!((5_898..=5_902).contains(&steady), "{steady} tasks in 59 s at 100/s");
    assert!(per_second[1..].iter().all(|n| (98..=102).contains(n)), "per second: {per_second:?}");
    assert!(waits > 20_000, "the other claims were told to wait ({waits})");
    let Claim::Ids(all) = claim(&broker, &free, "w1", 1_000).await else {
        panic!()
    };
    assert_eq!(all.len(), 500, "the queue without limits hands out everything at once");
}

#[tokio::test]
async fn a_burst_lets_that_many_out_at_once_then_the_rate_holds() {
    let (_redis, broker) = redis_and_broker();
    broker.enqueue(&queue(), &echoes(100), 0, None).await.unwrap();
    broker
        .set_limits(&queue(), &rate("10/s", Some(20)), LimitsSource::Api)
        .await
        .unwrap();
    let view = broker.limits(&queue()).await.unwrap().unwrap();
    assert_eq!((view.tokens, view.declared.burst), (Some(20), Some(20)));
    assert_eq!(claim_ids(&broker, "w1", 100).await.len(), 20);
    match claim(&broker, &queue(), "w2", 100).await {
        Claim::Held(Hold::Rate { wait }) => assert!(wait <= Duration::from_millis(100), "{wait:?}"),
        other => panic!("{other:?}"),
    }
    broker.clock().advance(Duration::from_millis(500));
    assert_eq!(claim_ids(&broker, "w2", 100).await.len(), 5, "half a second of 10/s");
    let view = broker.limits(&queue()).await.unwrap().unwrap();
    assert_eq!((view.tokens, view.held.as_deref()), (Some(0), Some("rate")));
}

#[tokio::test]
async fn a_concurrency_cap_is_never_exceeded_and_every_end_of_a_lease_gives_its_slot_back() {
    let (_redis, broker) = redis_and_broker();
    broker.enqueue(&queue(), &echoes(30), 0, None).await.unwrap();
    broker.set_limits(&queue(), &cap(5), LimitsSource::Api).await.unwrap();
    let w1 = claim_ids(&broker, "w1", 3).await;
    assert_eq!(claim_ids(&broker, "w2", 10).await.len(), 2, "only the slots left");
    assert_eq!(claim(&broker, &queue(), "w3", 10).await, Claim::Held(Hold::Concurrency));
    assert_eq!(running(&broker).await, 5);
    let view = broker.limits(&queue()).await.unwrap().unwrap();
    assert_eq!(view.held.as_deref(), Some("concurrency"));

    // A success and a retry each give a slot back.
    let runs = broker.start(&queue(), "w1", &w1).await.unwrap();
    let runs: Vec<_> = runs
        .into_iter()
        .map(|s| match s {
            celeriac::broker::Started::Run(d) => d,
            other => panic!("{other:?}"),
        })
        .collect();
    finish_run(&broker, "w1", &runs[0], Verdict::Success("1".into())).await;
    let error = celeriac::TaskError::retryable("again");
    finish_run(&broker, "w1", &runs[1], Verdict::Retry { error, due_ms: 0 }).await;
    assert_eq!(running(&broker).await, 3);

    // A task revoked after its claim is settled at start: its slot comes back.
    let w3 = claim_ids(&broker, "w3", 10).await;
    assert_eq!(w3.len(), 2);
    let revoked = celeriac::TaskId::on(&queue(), &w3[0]).unwrap();
    broker.revoke(&revoked, false, "test").await.unwrap();
    broker.start(&queue(), "w3", &w3[..1]).await.unwrap();
    assert_eq!(running(&broker).await, 4);

    // A graceful stop and a crashed worker's reap give theirs back.
    broker.requeue_own(&queue(), "w3", &w3[1..]).await.unwrap();
    assert_eq!(running(&broker).await, 3);
    expire_and_recover(&broker, "w2").await.unwrap();
    assert_eq!(running(&broker).await, 1, "w1's last task is still running");
    let freed: i64 = broker.connection().llen(broker.keys().slots_freed(&queue())).await.unwrap();
    assert!(freed >= 1, "freed slots ring for waiting workers");
}

#[tokio::test]
async fn a_worker_waiting_for_a_slot_wakes_when_one_is_freed() {
    let (_redis, broker) = redis_and_broker();
    broker.enqueue(&queue(), &echoes(3), 0, None).await.unwrap();
    broker.set_limits(&queue(), &cap(1), LimitsSource::Api).await.unwrap();
    let ids = claim_ids(&broker, "w1", 1).await;
    let hold = match claim(&broker, &queue(), "w2", 1).await {
        Claim::Held(hold) => hold,
        other => panic!("{other:?}"),
    };
    let _: () = broker.connection().del(broker.keys().slots_freed(&queue())).await.unwrap();
    let mut waiter = QueueWaiter::new(&broker, &queue());
    let waited = tokio::spawn(async move {
        let began = std::time::Instant::now();
        waiter.wait_for_release(hold, Duration::from_secs(10)).await.unwrap();
        began.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker.requeue_own(&queue(), "w1", &ids).await.unwrap();
    let waited = waited.await.unwrap();
    assert!(waited < Duration::from_secs(5), "woken by the freed slot after {waited:?}");
    assert_eq!(claim_ids(&broker, "w2", 1).await.len(), 1);
}

#[tokio::test]
async fn a_worker_waiting_for_a_slot_wakes_when_the_cap_is_raised() {
    let (_redis, broker) = redis_and_broker();
    broker.enqueue(&queue(), &echoes(3), 0, None).await.unwrap();
    broker.set_limits(&queue(), &cap(1), LimitsSource::Api).await.unwrap();
    claim_ids(&broker, "w1", 1).await;
    assert_eq!(claim(&broker, &queue(), "w2", 1).await, Claim::Held(Hold::Concurrency));
    let _: () = broker.connection().del(broker.keys().slots_freed(&queue())).await.unwrap();
    let mut waiter = QueueWaiter::new(&broker, &queue());
    let waited = tokio::spawn(async move {
        let began = std::time::Instant::now();
        waiter.wait_for_release(Hold::Concurrency, Duration::from_secs(10)).await.unwrap();
        began.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker.set_limits(&queue(), &cap(3), LimitsSource::Api).await.unwrap();
    let waited = waited.await.unwrap();
    assert!(waited < Duration::from_secs(5), "woken by the raised cap after {waited:?}");
    assert_eq!(claim_ids(&broker, "w2", 5).await.len(), 2);
}

#[tokio::test]
async fn a_cap_set_while_tasks_run_counts_them_and_settings_never_replace_an_operators_limits() {
    let (_redis, broker) = redis_and_broker();
    broker.enqueue(&queue(), &echoes(10), 0, None).await.unwrap();
    claim_ids(&broker, "w1", 3).await;
    broker.set_limits(&queue(), &cap(4), LimitsSource::Settings).await.unwrap();
    assert_eq!(running(&broker).await, 3, "the leases taken before the cap are counted");
    assert_eq!(claim_ids(&broker, "w2", 5).await.len(), 1);

    broker.set_limits(&queue(), &cap(6), LimitsSource::Api).await.unwrap();
    assert_eq!(running(&broker).await, 4);
    let kept = broker.set_limits(&queue(), &cap(2), LimitsSource::Settings).await.unwrap();
    assert_eq!(kept, LimitsOutcome::KeptOperators);
    let view = broker.limits(&queue()).await.unwrap().unwrap();
    assert_eq!((view.declared.concurrency, view.source.as_str()), (Some(6), "api"));

    broker.clear_limits(&queue()).await.unwrap();
    assert!(broker.limits(&queue()).await.unwrap().is_none());
    assert_eq!(claim_ids(&broker, "w2", 10).await.len(), 6, "no limit: everything left");
}

#[tokio::test]
async fn a_sharded_queue_spreads_its_limits_over_its_shards() {
    let (_redis, broker) = redis_and_broker();
    let queue = QueueName::parse("spread").unwrap();
    broker.raise_shards(&queue, 3).await.unwrap();
    broker.set_limits(&queue, &cap(4), LimitsSource::Api).await.unwrap();
    let mut caps = Vec::new();
    for i in 0..3 {
        let c: Option<u32> = broker
            .connection()
            .hget(broker.keys().limits(&queue.shard(i)), "cap")
            .await
            .unwrap();
        caps.push(c.unwrap());
    }
    assert_eq!(caps, [2, 1, 1]);
    let refused = broker.set_limits(&queue, &cap(2), LimitsSource::Api).await.unwrap_err();
    assert!(refused.to_string().contains("concurrency"), "{refused}");
    let view = broker.limits(&queue).await.unwrap().unwrap();
    assert_eq!((view.declared.concurrency, view.running), (Some(4), Some(0)));
}

fn keyed_task(key: Option<&str>, n: usize) -> NewTask {
    let mut t = NewTask::new(&queue(), "echo", &json!(n));
    t.options.limit_key = key.map(str::to_owned);
    t
}

/// Starts `ids` on `worker`: the ids that run, and the ones held back by their key.
async fn start_ids(broker: &Broker, worker: &str, ids: &[String]) -> (Vec<celeriac::broker::Delivery>, Vec<String>) {
    let mut runs = Vec::new();
    let mut held = Vec::new();
    for s in broker.start(&queue(), worker, ids).await.unwrap() {
        match s {
            celeriac::broker::Started::Run(d) => runs.push(d),
            celeriac::broker::Started::Skip { reason, .. } => held.push(reason),
        }
    }
    (runs, held)
}

#[tokio::test]
async fn a_key_cap_parks_the_tasks_of_a_busy_key_and_lets_the_other_keys_run() {
    let (_redis, broker) = redis_and_broker();
    let limits = QueueLimits {
        key_concurrency: Some(2),
        ..Default::default()
    };
    broker.set_limits(&queue(), &limits, LimitsSource::Api).await.unwrap();
    // Four of customer A, two of B, two without a key (their key is the task name).
    let tasks: Vec<NewTask> = [Some("A"), Some("A"), Some("A"), Some("A"), Some("B"), Some("B"), None, None]
        .iter()
        .enumerate()
        .map(|(n, key)| keyed_task(*key, n))
        .collect();
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let ids = claim_ids(&broker, "w1", 100).await;
    let (runs, held) = start_ids(&broker, "w1", &ids).await;
    assert_eq!((runs.len(), held), (6, vec!["parked".to_owned(), "parked".to_owned()]));
    let view = broker.limits(&queue()).await.unwrap().unwrap();
    assert_eq!(view.parked, Some(2));
    let parked = &tasks[2];
    let why = broker.key_hold(&parked.id, TaskState::Pending, "A").await.unwrap();
    assert!(why.unwrap().contains("\"A\""));
    let report = broker.audit().await.unwrap();
    assert!(report.is_clean(), "a parked task is at home: {:?}", report.problems);

    // One of A ends: one parked task of A goes back to the front of the queue and runs.
    let a = runs.iter().find(|d| d.id == tasks[0].id).unwrap();
    finish_run(&broker, "w1", a, Verdict::Success("1".into())).await;
    let again = claim_ids(&broker, "w2", 100).await;
    assert_eq!(again, [tasks[2].id.suffix().to_owned()], "the oldest parked task of A");
    let (runs2, held2) = start_ids(&broker, "w2", &again).await;
    assert_eq!((runs2.len(), held2.len()), (1, 0));
    // A retry gives the key's slot back too; a crashed worker's tasks give theirs back.
    let error = celeriac::TaskError::retryable("again");
    finish_run(&broker, "w2", &runs2[0], Verdict::Retry { error, due_ms: 0 }).await;
    assert_eq!(claim_ids(&broker, "w2", 100).await, [tasks[3].id.suffix().to_owned()]);
    assert_eq!(broker.limits(&queue()).await.unwrap().unwrap().parked, Some(0));
}

#[tokio::test]
async fn a_task_deferred_by_its_key_keeps_its_earlier_events() {
    let (_redis, broker) = redis_and_broker();
    broker.set_limits(&queue(), &key_rate("1/s"), LimitsSource::Api).await.unwrap();
    let task = keyed_task(Some("A"), 1);
    broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap();
    let (runs, _) = start_ids(&broker, "w1", &claim_ids(&broker, "w1", 1).await).await;
    let error = celeriac::TaskError::retryable("again");
    finish_run(&broker, "w1", &runs[0], Verdict::Retry { error, due_ms: 0 }).await;
    broker.promote_due(&queue(), 10).await.unwrap();
    // Key A's next token is a second away: the second start defers it, and logs that.
    let (runs, held) = start_ids(&broker, "w1", &claim_ids(&broker, "w1", 1).await).await;
    assert!(runs.is_empty() && held == ["deferred"], "{runs:?} {held:?}");
    use TaskState::*;
    assert_eq!(
        logged_states(&broker, &task.id).await,
        (vec![Some(Started), Some(Retry), Some(Pending), Some(Scheduled)], true)
    );
}

#[tokio::test]
async fn a_key_rate_holds_for_each_key_on_its_own_over_a_simulated_minute() {
    let (_redis, broker) = redis_and_broker();
    broker.set_limits(&queue(), &key_rate("5/s"), LimitsSource::Api).await.unwrap();
    let tasks: Vec<NewTask> = (0..800).map(|n| keyed_task(Some(if n % 2 == 0 { "A" } else { "B" }), n)).collect();
    for chunk in tasks.chunks(100) {
        broker.enqueue(&queue(), chunk, 0, None).await.unwrap();
    }
    let key_of: std::collections::HashMap<_, _> = tasks.iter().map(|t| (t.id.clone(), t.options.limit_key.clone().unwrap())).collect();
    let mut per_second = [vec![0usize; 60], vec![0usize; 60]];
    let start = broker.clock().now_ms();
    let mut elapsed = 0;
    let mut deferred = 0;
    while elapsed < 60_000 {
        broker.promote_due(&queue(), 1_000).await.unwrap();
        let ids = claim_ids(&broker, "w1", 200).await;
        if !ids.is_empty() {
            let (runs, held) = start_ids(&broker, "w1", &ids).await;
            deferred += held.len();
            for d in &runs {
                let k = usize::from(key_of[&d.id] == "B");
                per_second[k][elapsed as usize / 1000] += 1;
                finish_run(&broker, "w1", d, Verdict::Success("1".into())).await;
            }
        }
        broker.clock().advance(Duration::from_millis(10));
        elapsed = broker.clock().now_ms() - start;
    }
    assert!(deferred >= 790, "the extra tasks waited for their key's tokens ({deferred})");
    // A task still waiting for its key's token says so.
    let last = tasks.last().unwrap();
    let why = broker.key_hold(&last.id, TaskState::Scheduled, "B").await.unwrap();
    assert!(
        why.is_some_and(|w| w.contains("next token")),
        "a deferred task names its key's token"
    );
    for (key, seconds) in ["A", "B"].iter().zip(&per_second) {
        let total: usize = seconds.iter().sum();
        assert!((299..=302).contains(&total), "{key}: {total} in a minute at 5/s: {seconds:?}");
        assert!(seconds[1..].iter().all(|n| (4..=6).contains(n)), "{key}: {seconds:?}");
    }
    let report = broker.audit().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}
