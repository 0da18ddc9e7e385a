//! Enqueue: a batch stored by one script or refused whole (a full queue, a taken id, a bad
//! name), idempotency keys, delayed and expiring tasks, the enqueued counter, the listing cap,
//! and a lost reply asked again.

use std::time::Duration;

use celeriac::broker::{EnqueueOutcome, Idempotency, ListFilter, NewTask, Started};
use celeriac::{Broker, BrokerError, TaskId, TaskState};
use redis::AsyncCommands;
use serde_json::json;

use super::{claim_ids, echoes, queue, state};
use crate::common::{broker_through, redis_and_broker, redis_behind_cutter};

#[tokio::test]
async fn idempotency_keys_return_the_first_task_and_detect_reuse() {
    let (_redis, broker) = redis_and_broker();
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
    let (_redis, broker) = redis_and_broker();
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
async fn a_task_name_with_a_line_break_is_refused_and_nothing_is_stored() {
    let (_redis, broker) = redis_and_broker();
    let bad = NewTask::new(&queue(), "echo\nnoop", &json!(1));
    let refused = broker.enqueue(&queue(), std::slice::from_ref(&bad), 0, None).await;
    assert!(matches!(refused, Err(BrokerError::InvalidTask(_))), "{refused:?}");
    assert!(broker.get(&bad.id).await.unwrap().is_none());
}

#[tokio::test]
async fn delayed_tasks_are_scheduled_and_expired_ones_never_start() {
    let (_redis, broker) = redis_and_broker();
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
async fn enqueue_counts_the_tasks_it_stores_once_per_call_and_nothing_it_refuses() {
    let (_redis, broker) = redis_and_broker();
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
async fn the_listing_cap_drops_the_oldest_and_a_walk_goes_on_past_it() {
    let (_redis, broker) = redis_and_broker();
    let broker = broker.with_listing_max(4);
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
async fn an_enqueue_whose_reply_is_lost_is_asked_again_and_stored_once() {
    let (_redis, proxy, direct) = redis_behind_cutter();
    let broker = broker_through(&proxy, &direct);
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

#[tokio::test]
async fn a_task_stores_its_creation_time_only_when_its_id_does_not_hold_it() {
    let (_redis, broker) = redis_and_broker();
    let mut conn = broker.connection();
    let listing = broker.keys().listing(&queue());
    let id_ms = |id: &TaskId| id.made_ms().unwrap();
    // (the creation ms in the record's spec, the newest listing entry, the record's created_at)
    let mut stored = async |task: &NewTask| {
        let spec: String = conn.hget(broker.keys().task(&task.id), "t").await.unwrap();
        let entry: String = conn.lindex(&listing, 0).await.unwrap();
        let created = broker.get(&task.id).await.unwrap().unwrap().created_at.unwrap();
        let spec_ms = spec.split('\n').nth(1).unwrap().to_owned();
        (spec_ms, entry, created.timestamp_millis())
    };
    // A fresh id (UUID v7) made in the ms of its enqueue, as nearly every one is: neither the
    // spec nor the listing entry holds the time, and the record reads it from the id. (Tried
    // until an enqueue falls in the ms its id was made; the first almost always does.)
    let mut left_out = false;
    for i in 0..100 {
        let task = NewTask::new(&queue(), "echo", &json!(i));
        broker.enqueue(&queue(), std::slice::from_ref(&task), 0, None).await.unwrap();
        let (spec_ms, entry, created) = stored(&task).await;
        if spec_ms.is_empty() {
            assert_eq!(entry, task.id.suffix(), "the id alone");
            assert_eq!(created, id_ms(&task.id), "the id's time");
            left_out = true;
            break;
        }
        assert_eq!(entry, format!("{spec_ms}-{}", task.id.suffix()));
        assert_eq!(created.to_string(), spec_ms);
    }
    assert!(left_out, "an enqueue in its id's ms stores no creation time");

    // An id made in another ms than the enqueue's (here the broker's clock is 10 s ahead) and
    // a derived id (UUID v5, no time): the spec and the listing entry keep the enqueue's ms,
    // and the record reads it.
    broker.clock().advance(Duration::from_secs(10));
    let late = NewTask::new(&queue(), "echo", &json!("late"));
    let mut derived = NewTask::new(&queue(), "echo", &json!("derived"));
    derived.id = TaskId::derived(&queue(), "a firing");
    for task in [&late, &derived] {
        let before = broker.clock().now_ms();
        broker.enqueue(&queue(), std::slice::from_ref(task), 0, None).await.unwrap();
        let (spec_ms, entry, created) = stored(task).await;
        let ms: i64 = spec_ms.parse().expect("a stored creation time");
        assert!((before..before + 5_000).contains(&ms), "{ms}");
        assert_eq!(entry, format!("{ms}-{}", task.id.suffix()));
        assert_eq!(created, ms, "{}", task.id);
    }
    // Both forms of entry list, newest first.
    let filter = ListFilter {
        queue: Some(queue()),
        ..Default::default()
    };
    let page = broker.list_tasks(&filter, 3, 100, None).await.unwrap();
    let listed: Vec<&TaskId> = page.tasks.iter().map(|r| &r.task_id).collect();
    assert_eq!(listed[..2], [&derived.id, &late.id]);
    assert_eq!(listed.len(), 3);
}
