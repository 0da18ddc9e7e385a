//! The archive streams as the archivers see them: one per queue (`Keys::archive`), read by
//! one consumer group, so several archivers share the work and an entry read by one that died
//! stays pending until another claims it (XAUTOCLAIM). An entry is acknowledged and deleted
//! only after its row is committed. Also the backlog, for metrics.

use std::collections::HashMap;

use celeriac::broker::RedisConnection;
use celeriac::{Broker, BrokerError, QueueName};

/// The consumer group every archiver joins.
pub const GROUP: &str = "archivers";

/// One ending taken from a stream: its stream id and the entry's fields.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub fields: HashMap<String, String>,
}

impl Entry {
    /// When the ending was handed over (the stream id's time), ms.
    pub fn at_ms(&self) -> i64 {
        self.id.split('-').next().and_then(|ms| ms.parse().ok()).unwrap_or(0)
    }
}

type RawEntry = (String, Vec<String>);

fn entries(raw: Vec<RawEntry>) -> Vec<Entry> {
    raw.into_iter()
        .map(|(id, flat)| {
            let mut fields = HashMap::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                fields.insert(k, v);
            }
            Entry { id, fields }
        })
        .collect()
}

/// Creates the group on the queue's stream (and the stream), from its first entry, unless it
/// exists: endings handed over before any archiver ran are read too.
pub async fn ensure_group(conn: &mut RedisConnection, stream: &str) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Reads up to `count` entries for `consumer`: `"0"` for those it read before and has not
/// acknowledged, `">"` for new ones.
pub async fn read(conn: &mut RedisConnection, stream: &str, consumer: &str, from: &str, count: usize) -> redis::RedisResult<Vec<Entry>> {
    let reply: Option<Vec<(String, Vec<RawEntry>)>> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(stream)
        .arg(from)
        .query_async(conn)
        .await?;
    Ok(reply.into_iter().flatten().flat_map(|(_, raw)| entries(raw)).collect())
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
    let (_, raw, _): (String, Vec<RawEntry>, Vec<String>) = redis::cmd("XAUTOCLAIM")
        .arg(stream)
        .arg(GROUP)
        .arg(consumer)
        .arg(idle_ms)
        .arg("0-0")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(entries(raw))
}

/// Acknowledges the entries and deletes them from the stream, in one step.
pub async fn ack(conn: &mut RedisConnection, stream: &str, ids: &[&str]) -> redis::RedisResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    redis::pipe()
        .atomic()
        .cmd("XACK")
        .arg(stream)
        .arg(GROUP)
        .arg(ids)
        .ignore()
        .cmd("XDEL")
        .arg(stream)
        .arg(ids)
        .ignore()
        .query_async(conn)
        .await
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
