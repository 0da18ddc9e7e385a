//! Keeping the keyspace the same for drains that compare with each other in one run. A Redis
//! holding more records does the same work slower: a larger hash table, a larger table of
//! expiry times (a finished record has a TTL), rehashed as they grow, and more cache misses on
//! every lookup. Measured with `--archive`: a drain beside the 200,000 finished records of the
//! run's two earlier drains took 16.5 µs of Redis CPU per task, against 13.0 µs for the same
//! drain once those were deleted (2026-12-05, docs/archive.md). So each drain deletes its
//! records once timed.
//!
//! Not done for the full run's measures, where it was tried and dropped: deleting the enqueue
//! measures' 310,000 pending tasks before the drain moved neither its rate nor its Redis CPU
//! per task beyond the noise (two runs each), and deleting the drain's records before the
//! latency measures made Redis shrink its table, then grow and rehash it again under the
//! probes (likely: not profiled): the latency yardstick's p99 under load rose from 1.26 to
//! 1.44 ms (two runs each).

use celeriac::{Broker, QueueName};
use futures::StreamExt;
use redis::AsyncCommands;

/// Deletes the records of `queue`'s tasks (the pending list and the queue's other keys stay):
/// every key under the queue's record prefix, walked on each master as `Broker::audit` walks
/// the keyspace, then `DEL`eted a thousand at a time (freed at once, not behind the next
/// measure as `UNLINK` may).
pub async fn forget_records(broker: &Broker, queue: &QueueName) -> anyhow::Result<()> {
    // Queue names hold no glob characters: the prefix matches only itself.
    let pattern = format!("{}*", broker.keys().task_prefix(queue));
    for mut node in broker.master_connections().await? {
        let mut keys: Vec<String> = Vec::new();
        let mut iter: redis::AsyncIter<String> = node.scan_match(&pattern).await?;
        while let Some(key) = iter.next().await {
            keys.push(key?);
        }
        drop(iter);
        for chunk in keys.chunks(1000) {
            node.del::<_, ()>(chunk).await?;
        }
    }
    Ok(())
}
