//! Priorities within a queue: a task of priority 1 to 9 waits in its level's own list beside
//! the queue's pending list (level 0, the default), all under the queue's hash tag, and claims
//! take the highest level first, each list oldest first. Enqueue and claim stay constant-time
//! in the queue's length (a push, and at most ten pops). A queue never given a priority never
//! has these lists: its scripts touch the keys they always did, and one bell key
//! ([`crate::Keys::priority_bell`]), looked up in the same command as the pause flag, tells a
//! claim whether the levels hold anything. See docs/design.md ("Priorities").

use redis::AsyncCommands;

use super::{Broker, BrokerError};
use crate::id::QueueName;

impl Broker {
    /// Whether this process learned that `queue` has priority lists.
    pub(crate) fn knows_priorities(&self, queue: &QueueName) -> bool {
        self.prioritized.lock().expect("priority set lock").contains(queue)
    }

    pub(crate) fn learn_priorities(&self, queue: &QueueName) {
        self.prioritized.lock().expect("priority set lock").insert(queue.clone());
    }

    /// Whether `queue` was ever given a task of priority above 0 (its marker is set for good).
    /// Read by a worker before it blocks, to know whether to wait on the bell too.
    pub async fn uses_priorities(&self, queue: &QueueName) -> Result<bool, BrokerError> {
        if self.knows_priorities(queue) {
            return Ok(true);
        }
        let marked: bool = self.conn.clone().exists(self.keys.priority_marker(queue)).await?;
        if marked {
            self.learn_priorities(queue);
        }
        Ok(marked)
    }

    /// How many tasks wait in `queue`'s priority lists (levels 1 to 9; 0 for a queue without).
    pub async fn pending_in_levels(&self, queue: &QueueName) -> Result<u64, BrokerError> {
        if !self.uses_priorities(queue).await? {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for level in self.keys.pending_levels(queue) {
            pipe.llen(level);
        }
        let lens: Vec<u64> = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(lens.iter().sum())
    }

    /// Adds `queue`'s bell and priority lists to a call of a script that puts tasks back in
    /// their queue (promote.lua, requeue.lua), when the queue has priorities: a task of a
    /// priority goes back to its level's list. Read after the ids the call moves, so a task
    /// with a priority among them had the marker set before.
    pub(crate) async fn priority_keys(&self, queue: &QueueName, call: &mut redis::ScriptInvocation<'_>) -> Result<(), BrokerError> {
        if self.uses_priorities(queue).await? {
            call.key(self.keys.priority_bell(queue));
            for level in self.keys.pending_levels(queue) {
                call.key(level);
            }
        }
        Ok(())
    }
}
