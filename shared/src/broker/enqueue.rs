//! Enqueue: one script call stores the records and queue entries of one or many tasks of a
//! queue, so `202 Accepted` is only ever sent for tasks that are in Redis (invariant 1).

use super::lost_reply::ask_until_answered;
use super::new_task::{EnqueueOutcome, Idempotency, NewTask};
use super::{Broker, BrokerError, scripts};
use crate::id::{QueueName, TaskId};

/// Most tasks a queue's listing log keeps; the oldest entries go first.
pub const LISTING_MAX: u64 = 1_000_000;

impl Broker {
    /// One plain task (no idempotency key; its uniqueness and debounce, if any, already
    /// cleared by the caller) in a call of its own: `Ok` once stored, and any other outcome an
    /// error. The enqueue batcher's fallback and a retry from the archive store tasks this way.
    pub(super) async fn enqueue_plain(&self, queue: &QueueName, task: &NewTask, max_pending: u64) -> Result<(), BrokerError> {
        self.enqueue(queue, std::slice::from_ref(task), max_pending, None)
            .await
            .and_then(stored)
    }

    /// Stores `tasks` (all on `queue`) in one atomic step. `max_pending` > 0 refuses the whole
    /// batch with [`BrokerError::QueueFull`] when it would push the queue past that length.
    ///
    /// Asks again when the answer is lost: a connection that breaks (or times out) after the
    /// request was sent leaves it unknown whether Redis stored the batch, so the same batch is
    /// sent again, with the same ids, up to three more times, and the script tells: stored now,
    /// or found stored. As every enqueue is all or nothing, [`BrokerError::Duplicate`] of one
    /// of the batch's ids after a lost answer means the earlier attempt stored it all, and is
    /// answered [`EnqueueOutcome::Stored`] (ids that other callers may store too, as beat's
    /// occurrence ids, may have been stored by one of them instead: either way the task is
    /// there, once). An idempotency key answers the same way through
    /// [`EnqueueOutcome::Replayed`]. Without this a caller would see an outage for a task
    /// that runs, and its retry would run the work twice.
    pub async fn enqueue(
        &self,
        queue: &QueueName,
        tasks: &[NewTask],
        max_pending: u64,
        idempotency: Option<&Idempotency>,
    ) -> Result<EnqueueOutcome, BrokerError> {
        // A debounced call on its own merges into its burst (debounce.rs); with an
        // Idempotency-Key, or in a batch or a workflow, it is stored as any task.
        if let (None, [task]) = (idempotency, tasks)
            && task.workflow.is_none()
            && let Some(burst) = super::debounce::debounce_key(task)
        {
            return ask_until_answered("enqueue", queue, |_| self.enqueue_debounced(queue, task, burst)).await;
        }
        let outcome = self.enqueue_asking_again(queue, tasks, max_pending, idempotency).await?;
        // A unique task's lock held by a task that no longer needs it (revoked before it ran,
        // say) is ended, and the call takes it: once, as a lock taken in between is live.
        if let (EnqueueOutcome::Unique { task_id }, [task]) = (&outcome, tasks)
            && self.end_stale_unique(task, task_id).await?
        {
            return self.enqueue_asking_again(queue, tasks, max_pending, idempotency).await;
        }
        Ok(outcome)
    }

    /// One enqueue, asked again when its answer is lost (see [`Broker::enqueue`]).
    async fn enqueue_asking_again(
        &self,
        queue: &QueueName,
        tasks: &[NewTask],
        max_pending: u64,
        idempotency: Option<&Idempotency>,
    ) -> Result<EnqueueOutcome, BrokerError> {
        ask_until_answered("enqueue", queue, |sent_before| async move {
            match self.enqueue_once(queue, tasks, max_pending, idempotency).await {
                Err(BrokerError::Duplicate(id)) if sent_before && tasks.iter().any(|t| t.id == id) => Ok(EnqueueOutcome::Stored),
                other => other,
            }
        })
        .await
    }

    /// One call of the enqueue script.
    async fn enqueue_once(
        &self,
        queue: &QueueName,
        tasks: &[NewTask],
        max_pending: u64,
        idempotency: Option<&Idempotency>,
    ) -> Result<EnqueueOutcome, BrokerError> {
        let keys = &self.keys;
        // Tasks of priority above 0 go to the queue's priority lists, passed after the task
        // hashes only then: a queue never given priorities touches the keys it always did.
        let prioritized = tasks.iter().any(|t| t.level() > 0);
        let mut call = scripts::BatchCall::new(&scripts::ENQUEUE, 5 + tasks.len() + if prioritized { 11 } else { 0 });
        call.key(keys.pending(queue)).key(keys.scheduled(queue));
        // The claim slot: an Idempotency-Key, else a unique task's lock (unique.rs). A
        // workflow member is never a duplicate: its workflow counts on it.
        let unique = match (idempotency, tasks) {
            (None, [task]) if task.workflow.is_none() => self.unique_claim(task),
            _ => None,
        };
        match (idempotency, &unique) {
            (Some(idem), _) => call.key(keys.idempotency(queue, &idem.key)),
            (None, Some(lock)) => call.key(keys.unique(queue, &lock.key)),
            (None, None) => call.key(keys.pending(queue)),
        };
        call.key(keys.listing(queue));
        call.key(keys.stats(queue));
        for task in tasks {
            debug_assert_eq!(task.id.queue(), queue);
            call.key(keys.task(&task.id));
        }
        if prioritized {
            call.key(keys.priority_marker(queue)).key(keys.priority_bell(queue));
            for level in keys.pending_levels(queue) {
                call.key(level);
            }
        }
        let now = self.clock.now_ms();
        call.arg(now).arg(max_pending);
        match (idempotency.or(unique.as_ref()), tasks.first()) {
            (Some(idem), Some(first)) => call.arg(idem.ttl_secs).arg(format!("{} {}", first.id, idem.fingerprint)),
            _ => call.arg(0).arg(""),
        };
        call.arg(self.listing_max);
        for task in tasks {
            call.arg(task.id.suffix())
                .arg(task.spec(task.created_to_store(now), &self.payload)?)
                .arg(task.extras());
        }
        let reply: (i64, Option<String>) = call.invoke(&mut self.conn.clone()).await?;
        let outcome = match reply {
            (1, _) => EnqueueOutcome::Stored,
            (0, Some(first)) => {
                let (id, fingerprint) = first.split_once(' ').unwrap_or((&first, ""));
                let task_id = TaskId::parse(id).ok_or_else(|| BrokerError::Protocol(format!("idempotency value {first:?}")))?;
                if idempotency.is_none() && fingerprint == super::unique::UNIQUE_MARK {
                    // Our own lock after a lost reply: this very task was stored.
                    if tasks.first().is_some_and(|t| t.id == task_id) {
                        return Ok(EnqueueOutcome::Stored);
                    }
                    return Ok(EnqueueOutcome::Unique { task_id });
                }
                let same_request = idempotency.is_some_and(|i| i.fingerprint == fingerprint);
                EnqueueOutcome::Replayed { task_id, same_request }
            }
            (-1, depth) => {
                let depth = depth.and_then(|d| d.parse().ok()).unwrap_or(0);
                return Err(BrokerError::QueueFull {
                    queue: queue.clone(),
                    depth,
                });
            }
            (-2, Some(suffix)) => {
                let id = tasks.iter().find(|t| t.id.suffix() == suffix).map(|t| t.id.clone());
                return Err(id.map(BrokerError::Duplicate).unwrap_or_else(|| BrokerError::Protocol(suffix)));
            }
            other => return Err(BrokerError::Protocol(format!("enqueue returned {other:?}"))),
        };
        if outcome == EnqueueOutcome::Stored {
            self.replicated(|| keys.pending(queue)).await?;
        }
        self.remember_queue(queue).await?;
        Ok(outcome)
    }
}

/// A plain task's enqueue answers "stored" or an error.
pub(super) fn stored(outcome: EnqueueOutcome) -> Result<(), BrokerError> {
    match outcome {
        EnqueueOutcome::Stored => Ok(()),
        other => Err(BrokerError::Protocol(format!("a plain task's enqueue answered {other:?}"))),
    }
}
