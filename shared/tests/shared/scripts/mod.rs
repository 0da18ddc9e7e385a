//! The Lua transitions, driven through their typed Rust calls against a real redis-server: a
//! module per transition, on the helpers below (claim, start and finish as a worker would).

mod audit;
mod claim_start;
mod debounce;
mod enqueue;
mod events;
mod fetch;
mod finish;
mod limits;
mod loading;
mod priority;
mod purge;
mod requeue_reap;
mod retry_revoke;
mod unique;

use std::time::Duration;

use celeriac::broker::{Ack, Claim, NewTask, Outcome, Started, Verdict};
use celeriac::{Broker, QueueName, TaskState};
use redis::AsyncCommands;
use serde_json::json;

const LEASE: Duration = Duration::from_secs(30);

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
        other => panic!("took nothing: {other:?}"),
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

/// A poison task at the head of the pending list: a record without its spec (field `t`), as
/// no enqueue writes it.
async fn push_poison(broker: &Broker) -> NewTask {
    let poison = NewTask::new(&queue(), "echo", &json!("poison"));
    let mut conn = broker.connection();
    conn.hset::<_, _, _, ()>(broker.keys().task(&poison.id), "s", "PENDING")
        .await
        .unwrap();
    conn.lpush::<_, _, ()>(broker.keys().pending(&queue()), poison.id.suffix())
        .await
        .unwrap();
    poison
}

/// `n` echo tasks on the queue, with arguments 0, 1, ...
fn echoes(n: usize) -> Vec<NewTask> {
    (0..n).map(|i| NewTask::new(&queue(), "echo", &json!(i))).collect()
}

async fn state(broker: &Broker, id: &celeriac::TaskId) -> TaskState {
    broker.get(id).await.unwrap().unwrap().state
}

/// The states of a task's logged events, oldest first, and whether their ids count up by one.
async fn logged_states(broker: &Broker, id: &celeriac::TaskId) -> (Vec<Option<TaskState>>, bool) {
    let events = broker.task_events(id, 0).await.unwrap();
    let consecutive = events.windows(2).all(|w| w[1].id == w[0].id + 1);
    (events.iter().map(|e| e.state).collect(), consecutive)
}
