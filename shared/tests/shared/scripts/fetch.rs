//! Fetch (fetch.lua): claim and start in one call, for a queue with neither a pause, priority
//! lists nor limits: oldest first, at most what was asked, each task leased with its fencing
//! token and STARTED; asked again with its token, the same ids, to start; what must not run
//! (expired, gone, poison) settled as a start settles it; and a queue that needs the two-call way gets it.

use celeriac::TaskState;
use celeriac::broker::{Ack, Claim, Delivery, Fetched, NewTask, Outcome, Started, Verdict, new_claim_token};
use celeriac::{Broker, TaskId};
use redis::AsyncCommands;
use serde_json::json;

use super::{LEASE, echoes, push_poison, queue};
use crate::common::redis_and_broker;

async fn fetch(broker: &Broker, worker: &str, max: usize, token: &str) -> Fetched {
    broker.fetch(&queue(), worker, max, LEASE, token).await.unwrap()
}

/// What a fetch started; panics if it claimed the two-call way instead.
async fn fetch_started(broker: &Broker, worker: &str, max: usize) -> Vec<Started> {
    match fetch(broker, worker, max, &new_claim_token()).await {
        Fetched::Started(started) => started,
        other => panic!("expected a fetch that starts, got {other:?}"),
    }
}

fn runs(started: Vec<Started>) -> Vec<Delivery> {
    started
        .into_iter()
        .map(|s| match s {
            Started::Run(d) => d,
            other => panic!("expected a run, got {other:?}"),
        })
        .collect()
}

fn ids(tasks: &[NewTask]) -> Vec<TaskId> {
    tasks.iter().map(|t| t.id.clone()).collect()
}

async fn succeed(broker: &Broker, worker: &str, runs: &[Delivery]) -> Vec<Ack> {
    let outcomes: Vec<Outcome> = runs
        .iter()
        .map(|d| Outcome {
            id: d.id.clone(),
            delivery: d.delivery,
            verdict: Verdict::Success("1".into()),
        })
        .collect();
    broker.finish(&queue(), worker, &outcomes).await.unwrap()
}

#[tokio::test]
async fn a_fetch_takes_at_most_what_was_asked_oldest_first_and_starts_them() {
    let (_redis, broker) = redis_and_broker();
    let tasks = echoes(5);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();

    let first = runs(fetch_started(&broker, "w1", 3).await);
    assert_eq!(first.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), ids(&tasks[..3]));
    assert!(first.iter().all(|d| d.delivery == 1 && d.name == "echo"), "{first:?}");
    assert_eq!(first[1].args, "1");
    for d in &first {
        assert_eq!(broker.get(&d.id).await.unwrap().unwrap().state, TaskState::Started);
    }
    // Leased to w1 in its in-flight hash (a hash table), its lease on the queue renewed; two
    // left pending.
    let mut leased = broker.leased(&queue(), "w1").await.unwrap();
    leased.sort();
    let mut expected: Vec<String> = tasks[..3].iter().map(|t| t.id.suffix().to_owned()).collect();
    expected.sort();
    assert_eq!(leased, expected);
    let mut conn = broker.connection();
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(broker.keys().inflight(&queue(), "w1"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(encoding, "hashtable");
    let lease: Option<f64> = conn.zscore(broker.keys().leases(&queue()), "w1").await.unwrap();
    assert!(lease.unwrap() > broker.clock().now_ms() as f64);
    assert_eq!(conn.llen::<_, usize>(broker.keys().pending(&queue())).await.unwrap(), 2);
    let report = broker.audit().await.unwrap();
    assert!(report.is_clean(), "{report:?}");

    // The fencing tokens it wrote take the runs' outcomes.
    assert_eq!(succeed(&broker, "w1", &first).await, vec![Ack::Stored; 3]);
    let rest = runs(fetch_started(&broker, "w2", 10).await);
    assert_eq!(rest.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), ids(&tasks[3..]));
    assert!(fetch_started(&broker, "w2", 10).await.is_empty(), "nothing left");
    assert_eq!(succeed(&broker, "w2", &rest).await, vec![Ack::Stored; 2]);
    for t in &tasks {
        assert_eq!(broker.get(&t.id).await.unwrap().unwrap().state, TaskState::Success);
    }
    assert!(broker.leased(&queue(), "w1").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_fetch_asked_again_with_its_token_gives_its_ids_to_start() {
    let (_redis, broker) = redis_and_broker();
    let tasks = echoes(4);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let Fetched::Started(first) = fetch(&broker, "w1", 3, "token-a").await else {
        panic!("a fetch that starts")
    };
    assert_eq!(first.len(), 3);
    // The reply was lost: asked again with the same token, the same ids, leased, to start.
    let Fetched::Claimed(Claim::Ids(again)) = fetch(&broker, "w1", 3, "token-a").await else {
        panic!("the ids of the lost reply")
    };
    assert_eq!(again, tasks[..3].iter().map(|t| t.id.suffix().to_owned()).collect::<Vec<_>>());
    let restarted = runs(broker.start(&queue(), "w1", &again).await.unwrap());
    assert!(restarted.iter().all(|d| d.delivery == 2), "a new delivery each: {restarted:?}");
    assert_eq!(succeed(&broker, "w1", &restarted).await, vec![Ack::Stored; 3]);
    // A new token takes what is left.
    let next = runs(fetch_started(&broker, "w1", 3).await);
    assert_eq!(next.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), ids(&tasks[3..]));
}

#[tokio::test]
async fn a_fetch_settles_what_must_not_run_as_a_start_does() {
    let (_redis, broker) = redis_and_broker();
    let now = broker.clock().now_ms();
    let mut expired = NewTask::new(&queue(), "echo", &json!("expired"));
    expired.expires_ms = Some(now + 1);
    let gone = NewTask::new(&queue(), "echo", &json!("gone"));
    let good = NewTask::new(&queue(), "echo", &json!("good"));
    let tasks = [expired.clone(), gone.clone(), good.clone()];
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let poison = push_poison(&broker).await;
    let mut conn = broker.connection();
    conn.del::<_, ()>(broker.keys().task(&gone.id)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let started = fetch_started(&broker, "w1", 10).await;
    let fates: Vec<(TaskId, String)> = started
        .iter()
        .map(|s| match s {
            Started::Skip { id, reason } => (id.clone(), reason.clone()),
            Started::Run(d) => (d.id.clone(), "run".to_owned()),
        })
        .collect();
    assert_eq!(
        fates,
        [
            (expired.id.clone(), "expired".to_owned()),
            (gone.id.clone(), "gone".to_owned()),
            (good.id.clone(), "run".to_owned()),
            (poison.id.clone(), "poison".to_owned()),
        ]
    );
    assert_eq!(broker.get(&expired.id).await.unwrap().unwrap().state, TaskState::Revoked);
    let record = broker.get(&poison.id).await.unwrap().unwrap();
    assert_eq!((record.state, record.error.unwrap().kind.as_str()), (TaskState::Failure, "Poison"));
    let dead: Vec<String> = conn.zrange(broker.keys().dead(&queue()), 0, -1).await.unwrap();
    assert_eq!(dead, [poison.id.suffix()]);
    // Only the task that runs is leased; nothing is left pending.
    assert_eq!(broker.leased(&queue(), "w1").await.unwrap(), [good.id.suffix()]);
    assert_eq!(conn.llen::<_, usize>(broker.keys().pending(&queue())).await.unwrap(), 0);
    let report = broker.audit().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// The start reads a record of two fields as a plain task's state and spec only; a record of
/// two fields without a spec (here a workflow member's state and link) is read in full, so its
/// settle still hands the member to its workflow.
#[tokio::test]
async fn a_poison_workflow_member_of_two_fields_still_reaches_its_workflow() {
    let (_redis, broker) = redis_and_broker();
    let poison = push_poison(&broker).await;
    let mut conn = broker.connection();
    conn.hset::<_, _, _, ()>(broker.keys().task(&poison.id), "wf", "wf-1 0")
        .await
        .unwrap();

    let started = fetch_started(&broker, "w1", 10).await;
    assert!(
        matches!(&started[..], [Started::Skip { reason, .. }] if reason == "poison"),
        "{started:?}"
    );
    let outbox: Vec<String> = conn.lrange(broker.keys().workflow_outbox(&queue()), 0, -1).await.unwrap();
    assert_eq!(outbox, [poison.id.suffix()]);
}

/// A first start writes the state and the run field only: its delivery count, 1, is told by
/// the run field. The count is written from then on: by the second start, and by a manual
/// retry, which deletes the run field (as a requeue does: `requeue_reap::`).
#[tokio::test]
async fn a_first_start_writes_no_delivery_count_and_later_ones_count_on_from_it() {
    let (_redis, broker) = redis_and_broker();
    let tasks = echoes(1);
    broker.enqueue(&queue(), &tasks, 0, None).await.unwrap();
    let key = broker.keys().task(&tasks[0].id);
    let mut conn = broker.connection();
    let first = runs(fetch_started(&broker, "w1", 1).await);
    assert_eq!(first[0].delivery, 1);
    let mut fields: Vec<String> = conn.hkeys(&key).await.unwrap();
    fields.sort();
    assert_eq!(fields, ["s", "t", "w"], "no field but the state, the spec and the run");
    assert_eq!(broker.get(&tasks[0].id).await.unwrap().unwrap().deliveries, 1);

    let failed = Outcome {
        id: first[0].id.clone(),
        delivery: 1,
        verdict: Verdict::Failure(celeriac::TaskError::permanent("no")),
    };
    assert_eq!(broker.finish(&queue(), "w1", &[failed]).await.unwrap(), [Ack::Stored]);
    assert_eq!(broker.get(&tasks[0].id).await.unwrap().unwrap().deliveries, 1);
    broker.retry(&tasks[0].id).await.unwrap();
    let retried = broker.get(&tasks[0].id).await.unwrap().unwrap();
    assert_eq!((retried.state, retried.deliveries, retried.worker), (TaskState::Pending, 1, None));

    let second = runs(fetch_started(&broker, "w2", 1).await);
    assert_eq!(second[0].delivery, 2);
    assert_eq!(broker.get(&tasks[0].id).await.unwrap().unwrap().deliveries, 2);
    assert_eq!(conn.hget::<_, _, String>(&key, "d").await.unwrap(), "2");
}

#[tokio::test]
async fn a_paused_limited_or_prioritized_queue_is_claimed_the_two_call_way() {
    // Paused: nothing taken, as a claim says.
    let (_redis, broker) = redis_and_broker();
    broker.enqueue(&queue(), &echoes(2), 0, None).await.unwrap();
    let paused = broker.keys().paused(&queue());
    broker.connection().set::<_, _, ()>(&paused, 1).await.unwrap();
    assert!(matches!(fetch(&broker, "w1", 5, "t1").await, Fetched::Claimed(Claim::Paused)));
    broker.connection().del::<_, ()>(&paused).await.unwrap();

    // A concurrency cap: the claim counts the ids it leases against it.
    let (_redis, broker) = redis_and_broker();
    broker.enqueue(&queue(), &echoes(3), 0, None).await.unwrap();
    let cap = celeriac::broker::QueueLimits {
        concurrency: Some(2),
        ..Default::default()
    };
    broker
        .set_limits(&queue(), &cap, celeriac::broker::LimitsSource::Api)
        .await
        .unwrap();
    let Fetched::Claimed(Claim::Ids(capped)) = fetch(&broker, "w1", 5, "t2").await else {
        panic!("a claim under the cap")
    };
    assert_eq!(capped.len(), 2, "the cap holds the third back");
    let running: u64 = broker.connection().hget(broker.keys().limits(&queue()), "running").await.unwrap();
    assert_eq!(running, 2);

    // Priority lists: the claim takes the highest level first.
    let (_redis, broker) = redis_and_broker();
    let plain = NewTask::new(&queue(), "echo", &json!("plain"));
    let mut urgent = NewTask::new(&queue(), "echo", &json!("urgent"));
    urgent.options.priority = Some(5);
    broker.enqueue(&queue(), &[plain.clone(), urgent.clone()], 0, None).await.unwrap();
    let Fetched::Claimed(Claim::Ids(order)) = fetch(&broker, "w1", 5, "t3").await else {
        panic!("a claim over the levels")
    };
    assert_eq!(order, [urgent.id.suffix(), plain.id.suffix()]);
}
