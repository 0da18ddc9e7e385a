//! The enqueue batcher (broker/batcher.rs): concurrent calls for a queue share script calls,
//! and each gets the answer it would have had alone, a full queue included.

use std::time::Duration;

use celeriac::broker::{EnqueueBatcher, NewTask};
use celeriac::settings::Durability;
use celeriac::{Broker, BrokerError, QueueName, TaskState};
use celeriac_testkit::{RedisServer, unique_namespace};
use futures::future::join_all;
use redis::AsyncCommands;
use serde_json::json;

use crate::common::{TTL, redis_and_broker};

fn queue() -> QueueName {
    QueueName::parse("mail").unwrap()
}

fn emails(n: usize) -> Vec<NewTask> {
    (0..n)
        .map(|i| NewTask::new(&queue(), "send_email", &json!({"to": format!("user{i}@example.com")})))
        .collect()
}

/// Script calls the server has run (`EVALSHA` and `EVAL`), from `INFO commandstats`.
async fn script_calls(redis: &RedisServer) -> u64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum()
}

async fn pending_depth(broker: &Broker) -> usize {
    broker.connection().llen(broker.keys().pending(&queue())).await.unwrap()
}

#[tokio::test]
async fn concurrent_calls_share_script_calls_and_every_task_is_stored_as_sent() {
    // One node, so its command counts are the whole story.
    let redis = RedisServer::start_single();
    let broker = Broker::connect(&redis.url(), &unique_namespace(), TTL).unwrap();
    let batcher = EnqueueBatcher::new(broker.clone());
    let tasks = emails(200);
    let sent: Vec<_> = tasks.iter().map(|t| (t.id.clone(), t.args.clone())).collect();
    let calls_before = script_calls(&redis).await;

    let answers = join_all(tasks.into_iter().map(|t| batcher.enqueue(t, 0))).await;

    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    let calls = script_calls(&redis).await - calls_before;
    assert!(calls <= 20, "200 concurrent calls took {calls} script calls: they were not batched");
    assert_eq!(pending_depth(&broker).await, 200);
    for (id, args) in sent {
        let record = broker.get(&id).await.unwrap().expect("every accepted task is stored");
        assert_eq!(record.state, TaskState::Pending);
        assert_eq!(
            serde_json::to_string(&record.args).unwrap(),
            args,
            "task {id} holds its own arguments"
        );
    }
}

#[tokio::test]
async fn calls_beyond_the_loop_s_channel_wait_for_room_and_every_one_is_stored() {
    let redis = RedisServer::start_single();
    let broker = Broker::connect(&redis.url(), &unique_namespace(), TTL).unwrap();
    let batcher = EnqueueBatcher::new(broker.clone());
    // More concurrent calls than the queue's channel holds (4 x 256): the later ones find it
    // full and wait for room, as a plain send would.
    let answers = join_all(emails(3_000).into_iter().map(|t| batcher.enqueue(t, 0))).await;
    assert!(answers.iter().all(Result::is_ok), "{:?}", answers.iter().find(|a| a.is_err()));
    assert_eq!(pending_depth(&broker).await, 3_000);
}

#[tokio::test]
async fn a_batch_the_queue_cannot_hold_is_stored_task_by_task_up_to_its_bound() {
    let (_redis, broker) = redis_and_broker();
    let batcher = EnqueueBatcher::new(broker.clone());
    let tasks = emails(30);
    let ids: Vec<_> = tasks.iter().map(|t| t.id.clone()).collect();

    // Refused whole, a batch would leave the queue below its bound of 5 (or empty).
    let answers = join_all(tasks.into_iter().map(|t| batcher.enqueue(t, 5))).await;

    let accepted: Vec<_> = ids.iter().zip(&answers).filter(|(_, a)| a.is_ok()).map(|(id, _)| id).collect();
    assert_eq!(accepted.len(), 5, "{answers:?}");
    assert!(
        answers.iter().all(|a| matches!(a, Ok(()) | Err(BrokerError::QueueFull { .. }))),
        "{answers:?}"
    );
    assert_eq!(pending_depth(&broker).await, 5);
    for (id, answer) in ids.iter().zip(&answers) {
        let stored = broker.get(id).await.unwrap().is_some();
        assert_eq!(stored, answer.is_ok(), "task {id}: stored exactly when accepted");
    }
}

#[tokio::test]
async fn a_batch_no_replica_acknowledged_is_every_call_s_failure_not_stored_again() {
    // One node with no replica: under `replicated` durability no write is ever acknowledged.
    let redis = RedisServer::start_single();
    let broker = Broker::connect(&redis.url(), &unique_namespace(), TTL)
        .unwrap()
        .with_durability(Durability::Replicated, Duration::from_millis(50));
    let batcher = EnqueueBatcher::new(broker.clone());

    // Stored again task by task, each would find its id taken and read as stored.
    let answers = join_all(emails(12).into_iter().map(|t| batcher.enqueue(t, 0))).await;

    assert!(
        answers.iter().all(|a| matches!(a, Err(BrokerError::NotReplicated(_)))),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_queue_s_loop_ends_when_idle_and_a_later_call_starts_another() {
    let (_redis, broker) = redis_and_broker();
    let batcher = EnqueueBatcher::new(broker.clone()).with_idle(Duration::from_millis(100));
    let other = QueueName::parse("other").unwrap();
    let mut tasks = emails(2);
    tasks.push(NewTask::new(&other, "send_email", &json!({})));
    let later = tasks.pop().unwrap();

    join_all(tasks.into_iter().map(|t| batcher.enqueue(t, 0))).await;
    batcher.enqueue(later.clone(), 0).await.unwrap();
    assert_eq!(batcher.running_loops(), 2, "one loop for each queue called");

    // Idle loops end and leave the list (within 5 s, for a busy machine's timers).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while batcher.running_loops() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} loops left after idling",
            batcher.running_loops()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let again = emails(3);
    let ids: Vec<_> = again.iter().map(|t| t.id.clone()).collect();
    let answers = join_all(again.into_iter().map(|t| batcher.enqueue(t, 0))).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(batcher.running_loops(), 1);
    for id in ids {
        assert!(broker.get(&id).await.unwrap().is_some(), "task {id} stored by the new loop");
    }
    assert!(broker.get(&later.id).await.unwrap().is_some());
}

#[test]
fn only_plain_tasks_with_fresh_ids_are_batched() {
    let plain = NewTask::new(&queue(), "send_email", &json!({}));
    assert!(EnqueueBatcher::takes(&plain));
    let mut unique = plain.clone();
    unique.options.unique_for = Some(60.0);
    let mut debounced = plain.clone();
    debounced.options.debounce = Some(1.0);
    let mut member = plain.clone();
    member.workflow = Some("wf-1 0".into());
    let mut derived = plain.clone();
    derived.id = celeriac::TaskId::derived(&queue(), "seed");
    for task in [unique, debounced, member, derived] {
        assert!(!EnqueueBatcher::takes(&task), "{task:?}");
    }
}
