//! Redis streams read by a consumer group: the handovers that the scripts ending tasks write
//! (lua/archive.lua) and that other processes take from, each at its own pace. Several
//! readers share a stream through the group; an entry read by one that died stays pending
//! until another takes it over. An entry is acknowledged and deleted only once it is done
//! with. Used by the archivers (the archive streams) and the webhook deliverers.

use super::RedisConnection;

/// One entry taken from a stream: its stream id and its fields in their order (their values as
/// text, or as bytes: `Entry<Vec<u8>>`, for a stream holding binary values). A name may come
/// more than once: an archive entry holds one `_i` and `_d` pair per task (lua/archive.lua).
#[derive(Debug, Clone)]
pub struct Entry<V = String> {
    pub id: String,
    pub fields: Vec<(String, V)>,
}

impl<V> Entry<V> {
    /// The value of the first field named `name`.
    pub fn get(&self, name: &str) -> Option<&V> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// When the entry was written (the stream id's time), ms.
    pub fn at_ms(&self) -> i64 {
        id_ms(&self.id)
    }
}

/// When the entry of stream id `id` was written (the id's time), ms; 0 for an id that is not
/// one.
pub fn id_ms(id: &str) -> i64 {
    id.split('-').next().and_then(|ms| ms.parse().ok()).unwrap_or(0)
}

type RawEntry = (String, Vec<redis::Value>);

fn entries<V: redis::FromRedisValue>(raw: Vec<RawEntry>) -> redis::RedisResult<Vec<Entry<V>>> {
    raw.into_iter()
        .map(|(id, flat)| {
            let mut fields = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                fields.push((redis::from_redis_value(k)?, redis::from_redis_value(v)?));
            }
            Ok(Entry { id, fields })
        })
        .collect()
}

/// Creates `group` on the stream (and the stream), from its first entry, unless it exists:
/// entries written before any reader ran are read too.
pub async fn ensure_group(conn: &mut RedisConnection, stream: &str, group: &str) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
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
pub async fn read<V: redis::FromRedisValue>(
    conn: &mut RedisConnection,
    stream: &str,
    group: &str,
    consumer: &str,
    from: &str,
    count: usize,
) -> redis::RedisResult<Vec<Entry<V>>> {
    let reply: Option<Vec<(String, Vec<RawEntry>)>> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(stream)
        .arg(from)
        .query_async(conn)
        .await?;
    let mut out = Vec::new();
    for (_, raw) in reply.into_iter().flatten() {
        out.extend(entries(raw)?);
    }
    Ok(out)
}

/// Takes over up to `count` entries that other consumers read more than `idle_ms` ago and
/// never acknowledged (their reader died).
pub async fn claim_idle<V: redis::FromRedisValue>(
    conn: &mut RedisConnection,
    stream: &str,
    group: &str,
    consumer: &str,
    idle_ms: u64,
    count: usize,
) -> redis::RedisResult<Vec<Entry<V>>> {
    let (_, raw, _): (String, Vec<RawEntry>, Vec<String>) = redis::cmd("XAUTOCLAIM")
        .arg(stream)
        .arg(group)
        .arg(consumer)
        .arg(idle_ms)
        .arg("0-0")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    entries(raw)
}

/// An entry read and not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: String,
    /// Since it was last read, ms.
    pub idle_ms: u64,
    /// How many times it was read (by any consumer).
    pub reads: u32,
}

/// Up to `count` pending entries idle for at least `min_idle_ms`, oldest first.
pub async fn pending_idle(
    conn: &mut RedisConnection,
    stream: &str,
    group: &str,
    min_idle_ms: u64,
    count: usize,
) -> redis::RedisResult<Vec<Pending>> {
    let rows: Vec<(String, String, u64, u32)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg("IDLE")
        .arg(min_idle_ms)
        .arg("-")
        .arg("+")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, _, idle_ms, reads)| Pending { id, idle_ms, reads })
        .collect())
}

/// Takes the entry over for `consumer` if it is still pending and idle for at least
/// `min_idle_ms` (so of two readers racing for it, one gets it): it counts as read once more.
pub async fn claim(
    conn: &mut RedisConnection,
    stream: &str,
    group: &str,
    consumer: &str,
    min_idle_ms: u64,
    id: &str,
) -> redis::RedisResult<Option<Entry>> {
    let raw: Vec<Option<RawEntry>> = redis::cmd("XCLAIM")
        .arg(stream)
        .arg(group)
        .arg(consumer)
        .arg(min_idle_ms)
        .arg(id)
        .query_async(conn)
        .await?;
    Ok(entries(raw.into_iter().flatten().collect())?.into_iter().next())
}

/// Acknowledges the entries and deletes them from the stream, in one step.
pub async fn ack(conn: &mut RedisConnection, stream: &str, group: &str, ids: &[&str]) -> redis::RedisResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    redis::pipe()
        .atomic()
        .cmd("XACK")
        .arg(stream)
        .arg(group)
        .arg(ids)
        .ignore()
        .cmd("XDEL")
        .arg(stream)
        .arg(ids)
        .ignore()
        .query_async(conn)
        .await
}
