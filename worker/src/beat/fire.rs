//! Firing one occurrence: enqueue the schedule's task under the occurrence's deterministic id.
//! A refusal because the id exists means another beat (or an earlier try of this one) fired
//! it: the occurrence is done, never duplicated.

use celeriac::broker::NewTask;
use celeriac::schedule::Schedule;
use celeriac::{Broker, BrokerError, QueueName, TaskId};

/// What became of an occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fired {
    /// This call stored the task.
    Enqueued(TaskId),
    /// The task was stored before, by another beat or an earlier try.
    AlreadyThere(TaskId),
    /// The queue is over its limit; the occurrence is retried at the next tick.
    QueueFull,
}

/// Enqueues the occurrence at `occurrence_ms` of `schedule` on `queue`.
pub(crate) async fn occurrence(
    broker: &Broker,
    schedule: &Schedule,
    queue: &QueueName,
    occurrence_ms: i64,
    now: i64,
    max_pending: u64,
) -> Result<Fired, BrokerError> {
    let def = &schedule.def;
    let mut task = NewTask::new(queue, &def.task, &def.args);
    task.id = schedule.occurrence_id(queue, occurrence_ms);
    task.options = def.options.task_options();
    task.expires_ms = def.options.expires.map(|secs| now + (secs * 1000.0) as i64);
    match broker.enqueue(queue, std::slice::from_ref(&task), max_pending, None).await {
        Ok(_) => {
            tracing::info!(schedule = %def.name, task = %def.task, task_id = %task.id, occurrence_ms, late_ms = now - occurrence_ms, "fired");
            Ok(Fired::Enqueued(task.id))
        }
        Err(BrokerError::Duplicate(id)) => {
            tracing::debug!(schedule = %def.name, task_id = %id, "occurrence already fired");
            Ok(Fired::AlreadyThere(id))
        }
        Err(BrokerError::QueueFull { queue, depth }) => {
            tracing::warn!(schedule = %def.name, queue = %queue, depth, "queue full; the occurrence waits for the next tick");
            Ok(Fired::QueueFull)
        }
        Err(e) => Err(e),
    }
}
