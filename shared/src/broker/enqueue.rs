//! Enqueue: one script call stores the records and queue entries of one or many tasks of a
//! queue, so `202 Accepted` is only ever sent for tasks that are in Redis (invariant 1).

use serde_json::Value;

use super::fields::StoredSpec;
use super::lost_reply::ask_until_answered;
use super::{Broker, BrokerError, scripts};
use crate::id::{QueueName, TaskId, made_ms_of};
use crate::task::TaskOptions;
use crate::trace::TraceParent;

/// Most tasks a queue's listing log keeps; the oldest entries go first.
pub const LISTING_MAX: u64 = 1_000_000;

/// A task to store.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: TaskId,
    pub name: String,
    /// The arguments as JSON text.
    pub args: String,
    pub options: TaskOptions,
    /// When it may run, ms since the epoch; `None` = now.
    pub due_ms: Option<i64>,
    /// When it must no longer start, ms since the epoch.
    pub expires_ms: Option<i64>,
    /// `"<workflow id> <node>"` for a workflow member.
    pub workflow: Option<String>,
    /// The W3C `traceparent` of the request that enqueued it, for the run to continue.
    pub traceparent: Option<TraceParent>,
}

impl NewTask {
    /// A task to run as soon as possible with a fresh id.
    pub fn new(queue: &QueueName, name: &str, args: &Value) -> Self {
        Self {
            id: TaskId::generate(queue),
            name: name.to_owned(),
            args: serde_json::to_string(args).expect("a JSON value serializes"),
            options: TaskOptions::default(),
            due_ms: None,
            expires_ms: None,
            workflow: None,
            traceparent: None,
        }
    }
}

impl NewTask {
    /// What enqueue.lua needs beyond the id and the spec: `""` for a task to run now that never
    /// expires, is no workflow member and has priority 0, else `<due ms> <expires ms>
    /// <workflow link>`, with `p<priority> ` in front for a priority above 0.
    fn extras(&self) -> String {
        let level = self.level();
        match (self.due_ms, self.expires_ms, &self.workflow, level) {
            (None, None, None, 0) => String::new(),
            (due, expires, link, level) => format!(
                "{}{} {} {}",
                if level > 0 { format!("p{level} ") } else { String::new() },
                due.unwrap_or(0).max(0),
                expires.unwrap_or(0).max(0),
                link.as_deref().unwrap_or("")
            ),
        }
    }

    /// Its priority level, 0 (the default) to 9.
    pub(super) fn level(&self) -> u8 {
        self.options.priority.unwrap_or(0).min(crate::task::MAX_PRIORITY)
    }

    /// The creation time its spec stores when enqueued at `now_ms`: none when its id holds that
    /// very ms (a UUID v7 made then), as it does for nearly every task.
    pub(super) fn created_to_store(&self, now_ms: i64) -> Option<i64> {
        (made_ms_of(self.id.suffix()) != Some(now_ms)).then_some(now_ms)
    }

    /// The packed form stored in the task's hash ([`StoredSpec`]), with `created_ms` as its
    /// creation time (`None`: its id holds it).
    pub(super) fn spec(&self, created_ms: Option<i64>, payload: &crate::payload::PayloadLimits) -> Result<String, BrokerError> {
        if self.name.contains('\n') {
            return Err(BrokerError::InvalidTask(format!(
                "the task name {:?} holds a line break",
                self.name
            )));
        }
        let options = if self.options.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&self.options).expect("options serialize")
        };
        let traceparent = self.traceparent.as_ref().map(ToString::to_string).unwrap_or_default();
        Ok(StoredSpec {
            name: &self.name,
            created_ms,
            traceparent: &traceparent,
            options: &options,
            args: &payload.pack(&self.args),
        }
        .pack())
    }
}

/// An `Idempotency-Key` claim: repeats within the TTL get the first task's id back.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    /// A digest of the request, to tell a true repeat from a reuse of the key.
    pub fingerprint: String,
    pub ttl_secs: u64,
}

/// What an accepted enqueue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The tasks are stored and queued (or scheduled).
    Stored,
    /// The idempotency key was used before; nothing new was stored.
    Replayed { task_id: TaskId, same_request: bool },
    /// The task is unique (`unique_for`) and an equal one is locked: nothing new was stored;
    /// `task_id` is the existing one.
    Unique { task_id: TaskId },
    /// The task is debounced (`debounce`) and its burst's task still waits: that task
    /// (`task_id`) now has this call's arguments and options and starts later; nothing new
    /// was stored.
    Debounced { task_id: TaskId },
}

impl Broker {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_task_sends_no_extras() {
        let queue = QueueName::parse("default").unwrap();
        let mut task = NewTask::new(&queue, "noop", &Value::Null);
        assert_eq!(task.extras(), "");
        task.due_ms = Some(17);
        assert_eq!(task.extras(), "17 0 ");
        task.expires_ms = Some(-3);
        task.workflow = Some("wf1 2".into());
        assert_eq!(task.extras(), "17 0 wf1 2", "a past expiry reads as none, as before");
        task.options.priority = Some(0);
        assert_eq!(task.extras(), "17 0 wf1 2", "priority 0 is the default");
        task.options.priority = Some(4);
        assert_eq!(task.extras(), "p4 17 0 wf1 2");
    }
}
