//! What the archive's examples share: e-mail tasks brought to the point where a worker
//! acknowledges them, driven as the archive's tests drive theirs.

#[path = "../../tests/archive/drive.rs"]
mod drive;

use celeriac::broker::{NewTask, Outcome, Verdict};
use celeriac::{Broker, QueueName};
use serde_json::json;

/// Enqueues `n` e-mail tasks, claims and starts them (tests/archive/drive.rs), each a success.
pub async fn started_emails(broker: &Broker, queue: &QueueName, n: usize) -> Vec<Outcome> {
    let tasks: Vec<NewTask> = (0..n)
        .map(|i| {
            NewTask::new(
                queue,
                "send_email",
                &json!({"to": format!("user{i}@example.com"), "subject": "Welcome", "body": "Hello and welcome aboard!"}),
            )
        })
        .collect();
    drive::started_outcomes(broker, queue, "w1", &tasks, |_| {
        Verdict::Success(json!({"sent": true, "message_id": "abc"}).to_string())
    })
    .await
}
