//! Firing one occurrence: enqueue the schedule's task under the occurrence's deterministic id.
//! A refusal because the id exists means another beat (or an earlier try of this one) fired
//! it: the occurrence is done, never duplicated.

use celeriac::catalog::Catalog;
use celeriac::schedule::Schedule;
use celeriac::{Broker, BrokerError, QueueName, TaskId};

/// What became of an occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fired {
    /// This call stored the task.
    Enqueued(TaskId),
    /// The task was stored before, by another beat or an earlier try.
    AlreadyThere(TaskId),
    /// The queue is over its limit, or the call is refused (its task is not known yet); the
    /// occurrence is retried at the next tick.
    Refused,
}

/// Enqueues the occurrence at `occurrence_ms` of `schedule` on `queue`, through the one
/// enqueue path ([`Catalog::prepare`]), as `POST /tasks` would.
pub(crate) async fn occurrence(
    broker: &Broker,
    catalog: &Catalog,
    schedule: &Schedule,
    queue: &QueueName,
    occurrence_ms: i64,
    now: i64,
) -> Result<Fired, BrokerError> {
    let def = &schedule.def;
    let mut call = schedule.call();
    call.queue = Some(queue.to_string());
    let mut task = match catalog.prepare(broker, &def.task, &def.args, &call, now).await {
        Ok(task) => task,
        Err(e) => {
            tracing::warn!(schedule = %def.name, task = %def.task, error = %e, "the occurrence cannot be enqueued; it waits for the next tick");
            return Ok(Fired::Refused);
        }
    };
    task.id = schedule.occurrence_id(queue, occurrence_ms);
    match broker
        .enqueue(queue, std::slice::from_ref(&task), catalog.max_pending(broker, queue), None)
        .await
    {
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
            Ok(Fired::Refused)
        }
        Err(e) => Err(e),
    }
}
