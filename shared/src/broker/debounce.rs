//! Debounced tasks (`debounce`): a burst of calls of one key runs one task, with the last
//! call's arguments, once the calls stop for the debounce delay. The burst's key (its
//! `debounce_key`, else the task's name) names the task it stored; while that task waits in
//! the scheduled set, a call replaces its spec and pushes its due time back (debounce.lua).
//! Once it was promoted or started, the next call starts a new burst. See docs/design.md
//! ("Flow control", Debounce).

use super::new_task::{EnqueueOutcome, NewTask};
use super::{Broker, BrokerError, scripts};
use crate::id::{QueueName, TaskId};

/// How long a burst's key outlives its task's due time: a later call within it still finds
/// the task (and sees it has started, so it starts a new burst).
const KEY_GRACE_MS: i64 = 60_000;

/// Most times a call reads the key again because another call changed it in between.
const MAX_RACES: usize = 16;

/// The name of `task`'s burst, when it is debounced.
pub(crate) fn debounce_key(task: &NewTask) -> Option<&str> {
    task.options.debounce?;
    Some(task.options.debounce_key.as_deref().unwrap_or(&task.name))
}

impl Broker {
    /// Stores the debounced `task` on `queue`, or merges it into its burst's waiting task:
    /// [`EnqueueOutcome::Stored`] (a new task, scheduled `debounce` seconds after its due
    /// time) or [`EnqueueOutcome::Debounced`] (the waiting task now has this call's spec and
    /// due time). Asked again after a lost answer, a stored call finds its own task and
    /// merges into it, which changes nothing.
    pub(crate) async fn enqueue_debounced(&self, queue: &QueueName, task: &NewTask, burst: &str) -> Result<EnqueueOutcome, BrokerError> {
        let keys = &self.keys;
        let lock = keys.debounce(queue, burst);
        let now = self.clock.now_ms();
        let delay_ms = (task.options.debounce.unwrap_or(0.0) * 1000.0).round() as i64;
        let due = task.due_ms.unwrap_or(now).max(now) + delay_ms;
        // Its time always stored: this spec may replace a waiting task's, whose id holds
        // another time.
        let spec = task.spec(Some(now), &self.payload)?;
        let level = match task.level() {
            0 => String::new(),
            level => level.to_string(),
        };
        let mut conn = self.conn.clone();
        let mut found: String = redis::AsyncCommands::get::<_, Option<String>>(&mut conn, &lock)
            .await?
            .unwrap_or_default();
        for _ in 0..MAX_RACES {
            let waiting = TaskId::on(queue, &found).unwrap_or_else(|| task.id.clone());
            let (status, suffix): (i64, String) = scripts::DEBOUNCE
                .key(&lock)
                .key(keys.scheduled(queue))
                .key(keys.task(&waiting))
                .key(keys.task(&task.id))
                .key(keys.listing(queue))
                .key(keys.stats(queue))
                .arg(now)
                .arg(&found)
                .arg(task.id.suffix())
                .arg(&spec)
                .arg(due)
                .arg(due - now + KEY_GRACE_MS)
                .arg(self.listing_max)
                .arg(&level)
                .invoke_async(&mut conn)
                .await?;
            let outcome = match status {
                1 => EnqueueOutcome::Stored,
                0 if suffix == task.id.suffix() => EnqueueOutcome::Stored,
                0 => EnqueueOutcome::Debounced { task_id: waiting },
                -3 => {
                    found = suffix;
                    continue;
                }
                -2 => return Err(BrokerError::Duplicate(task.id.clone())),
                other => return Err(BrokerError::Protocol(format!("debounce returned {other}"))),
            };
            self.replicated(|| keys.scheduled(queue)).await?;
            self.remember_queue(queue).await?;
            return Ok(outcome);
        }
        Err(BrokerError::Protocol(format!(
            "the debounce key {burst:?} of {queue} changed {MAX_RACES} times in a row"
        )))
    }
}
