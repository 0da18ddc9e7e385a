//! Purge: empty a queue's pending list and settle its tasks as `REVOKED` (reason `Purged`),
//! without blocking Redis on a big queue. The pending list is renamed to the purging list in
//! one step (no worker can take a purged task), then settled in batches by `purge.lua`; a
//! worker's sweep finishes a purge whose caller was interrupted.

use redis::AsyncCommands;

use super::{Broker, BrokerError, scripts};
use crate::id::{QueueName, TaskId};

const BATCH: isize = 500;

impl Broker {
    /// Purges the queue's pending tasks (every shard's, for a sharded queue); returns how
    /// many were removed.
    pub async fn purge(&self, queue: &QueueName) -> Result<usize, BrokerError> {
        let mut removed = 0;
        for shard in self.shards_of(queue).await? {
            removed += self.purge_shard(&shard).await?;
        }
        Ok(removed)
    }

    async fn purge_shard(&self, queue: &QueueName) -> Result<usize, BrokerError> {
        let mut removed = self.finish_purge(queue).await?;
        let moved: i64 = scripts::PURGE_START
            .key(self.keys.pending(queue))
            .key(self.keys.purging(queue))
            .invoke_async(&mut self.conn.clone())
            .await?;
        if moved == 1 {
            removed += self.finish_purge(queue).await?;
        }
        Ok(removed)
    }

    /// Settles what is left in the queue's purging list (nothing, normally).
    pub async fn finish_purge(&self, queue: &QueueName) -> Result<usize, BrokerError> {
        let purging = self.keys.purging(queue);
        let mut settled = 0;
        loop {
            let tail: Vec<String> = self.conn.clone().lrange(&purging, -BATCH, -1).await?;
            if tail.is_empty() {
                return Ok(settled);
            }
            let mut call = scripts::PURGE.prepare_invoke();
            call.key(&purging).key(self.keys.workflow_outbox(queue)).key(self.keys.stats(queue));
            call.arg(self.clock.now_ms())
                .arg(self.result_ttl_secs)
                .arg(self.keys.events_channel())
                .arg(queue.as_str());
            for suffix in &tail {
                let id = TaskId::parse(&format!("{queue}-{suffix}"))
                    .ok_or_else(|| BrokerError::Protocol(format!("purging entry {suffix:?}")))?;
                call.key(self.keys.task(&id)).arg(suffix);
            }
            for stream in self.ending_streams(queue) {
                call.key(stream);
            }
            let n: i64 = call.invoke_async(&mut self.conn.clone()).await?;
            settled += n.max(0) as usize;
        }
    }
}
