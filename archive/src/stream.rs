//! The archive streams as the archivers see them: one per queue (`Keys::archive`), read by
//! one consumer group, so several archivers share the work and an entry read by one that died
//! stays pending until another claims it (XAUTOCLAIM). An entry is acknowledged and deleted
//! only after its row is committed. Also the backlog, for metrics.

use celeriac::broker::RedisConnection;
use celeriac::{Broker, BrokerError, QueueName};

/// The consumer group every archiver joins.
pub const GROUP: &str = "archivers";

use celeriac::broker::streams;
pub use celeriac::broker::streams::Entry;

/// Creates the group on the queue's stream (and the stream), from its first entry, unless it
/// exists: endings handed over before any archiver ran are read too.
pub async fn ensure_group(conn: &mut RedisConnection, stream: &str) -> redis::RedisResult<()> {
    streams::ensure_group(conn, stream, GROUP).await
}

/// Reads up to `count` entries for `consumer`: `"0"` for those it read before and has not
/// acknowledged, `">"` for new ones.
pub async fn read(conn: &mut RedisConnection, stream: &str, consumer: &str, from: &str, count: usize) -> redis::RedisResult<Vec<Entry>> {
    streams::read(conn, stream, GROUP, consumer, from, count).await
}

/// Takes over up to `count` entries that other consumers read more than `idle_ms` ago and
/// never acknowledged (their archiver died).
pub async fn claim_idle(
    conn: &mut RedisConnection,
    stream: &str,
    consumer: &str,
    idle_ms: u64,
    count: usize,
) -> redis::RedisResult<Vec<Entry>> {
    streams::claim_idle(conn, stream, GROUP, consumer, idle_ms, count).await
}

/// Acknowledges the entries and deletes them from the stream, in one step.
pub async fn ack(conn: &mut RedisConnection, stream: &str, ids: &[&str]) -> redis::RedisResult<()> {
    streams::ack(conn, stream, GROUP, ids).await
}

/// What a queue's archive stream still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueBacklog {
    pub queue: QueueName,
    /// Endings not archived yet (entries are deleted once archived).
    pub entries: u64,
    /// Of those, the ones an archiver has read and not yet committed.
    pub pending: u64,
}

/// The backlog of every queue of the broker's namespace whose stream holds anything.
pub async fn backlog(broker: &Broker) -> Result<Vec<QueueBacklog>, BrokerError> {
    let mut conn = broker.connection();
    let mut out = Vec::new();
    for queue in broker.queues().await? {
        let stream = broker.keys().archive(&queue);
        let entries: u64 = redis::cmd("XLEN").arg(&stream).query_async(&mut conn).await?;
        if entries == 0 {
            continue;
        }
        let pending: redis::RedisResult<(u64, redis::Value, redis::Value, redis::Value)> =
            redis::cmd("XPENDING").arg(&stream).arg(GROUP).query_async(&mut conn).await;
        let pending = match pending {
            Ok((n, ..)) => n,
            Err(e) if e.code() == Some("NOGROUP") => 0,
            Err(e) => return Err(e.into()),
        };
        out.push(QueueBacklog { queue, entries, pending });
    }
    Ok(out)
}
