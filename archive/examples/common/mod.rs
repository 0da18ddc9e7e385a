//! What the archive's examples share: tasks brought to the point where a worker acknowledges
//! them.

use std::time::Duration;

use celeriac::broker::{Claim, NewTask, Outcome, Started, Verdict, new_claim_token};
use celeriac::{Broker, QueueName};
use serde_json::json;

/// Enqueues `n` e-mail tasks in one call, claims and starts them as a worker does (worker
/// `w1`), and returns their successful outcomes, ready for `Broker::finish`.
pub async fn started_batch(broker: &Broker, queue: &QueueName, n: usize) -> Vec<Outcome> {
    let batch: Vec<NewTask> = (0..n)
        .map(|i| {
            NewTask::new(
                queue,
                "send_email",
                &json!({"to": format!("user{i}@example.com"), "subject": "Welcome", "body": "Hello and welcome aboard!"}),
            )
        })
        .collect();
    broker.enqueue(queue, &batch, 0, None).await.unwrap();
    let Claim::Ids(ids) = broker
        .claim(queue, "w1", n, Duration::from_secs(60), &new_claim_token())
        .await
        .unwrap()
    else {
        panic!("the queue is paused")
    };
    broker
        .start(queue, "w1", &ids)
        .await
        .unwrap()
        .into_iter()
        .map(|s| match s {
            Started::Run(d) => Outcome {
                id: d.id,
                delivery: d.delivery,
                verdict: Verdict::Success(json!({"sent": true, "message_id": "abc"}).to_string()),
            },
            other => panic!("{other:?}"),
        })
        .collect()
}
