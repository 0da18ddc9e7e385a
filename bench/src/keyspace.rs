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

/// Deletes the records of `queue`'s tasks (the pending list and the queue's other keys stay).
pub async fn forget_records(broker: &Broker, queue: &QueueName) -> anyhow::Result<()> {
    delete_matching(broker, &format!("{}*", broker.keys().task_prefix(queue))).await
}

/// `SCAN`s the keys matching `pattern` (queue names hold no glob characters) and `DEL`s
/// them, a thousand at a time: freed at once, not behind the next measure as `UNLINK` may.
async fn delete_matching(broker: &Broker, pattern: &str) -> anyhow::Result<()> {
    let mut conn = broker.connection();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            redis::cmd("DEL").arg(&keys).query_async::<()>(&mut conn).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
