//! The archive streams as the archivers see them: one per queue (`Keys::archive`), read by
//! one consumer group, so several archivers share the work and an entry read by one that died
//! stays pending until another claims it (XAUTOCLAIM). An entry is acknowledged and deleted
//! only after its row is committed. What an entry hands over ([`handover`]): the record's
//! `DUMP` (dump.rs decodes it; Redis, [`restore`], one it cannot), or, from earlier builds,
//! the record's fields. Also the backlog, for metrics.

use std::collections::HashMap;

use celeriac::broker::RedisConnection;
use celeriac::{Broker, BrokerError, QueueName};

/// The consumer group every archiver joins.
pub const GROUP: &str = "archivers";

use celeriac::broker::streams;

use crate::dump::{self, DumpError};

/// An archive stream entry: the task id (`_id`, text) and the record's `DUMP` (`_d`, bytes;
/// dump.rs), or, from a build before the dump, the record's fields themselves.
pub type Entry = streams::Entry<Vec<u8>>;

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

/// The entry field holding the task id (lua/archive.lua).
pub const ID_FIELD: &str = "_id";
/// The entry field holding the record's `DUMP` (lua/archive.lua).
pub const DUMP_FIELD: &str = "_d";

/// What an entry hands over.
#[derive(Debug)]
pub enum Handover {
    /// The task id and the record's fields.
    Fields { id: String, fields: HashMap<String, String> },
    /// A record dump the decoder refused (a Redis whose format it does not know): Redis must
    /// decode it ([`restore`]).
    Undecoded { id: String, dump: Vec<u8>, error: DumpError },
    /// Nothing a row can be made of, and why.
    Bad(String),
}

/// What the entry's fields hand over: the record's dump, decoded, or (an entry of a build
/// before the dump) the record's fields themselves.
pub fn handover(mut fields: HashMap<String, Vec<u8>>) -> Handover {
    let Some(id) = fields.remove(ID_FIELD).and_then(|id| String::from_utf8(id).ok()) else {
        return Handover::Bad("an entry without its task id".into());
    };
    match fields.remove(DUMP_FIELD) {
        Some(dump) => match dump::hash_fields(&dump) {
            Ok(fields) => Handover::Fields { id, fields },
            Err(error) => Handover::Undecoded { id, dump, error },
        },
        None => match fields.into_iter().map(|(k, v)| String::from_utf8(v).map(|v| (k, v))).collect() {
            Ok(fields) => Handover::Fields { id, fields },
            Err(_) => Handover::Bad(format!("task {id}: a field that is not UTF-8")),
        },
    }
}

/// The task id and record fields the entry hands over ([`handover`]; a dump the decoder
/// refuses is decoded by Redis, [`restore`]), or why it never can: the outer error is a
/// failure to reach Redis (or a refused permission), to try again, so nothing is skipped
/// that might still pass.
pub async fn record_of(
    conn: &mut RedisConnection,
    stream: &str,
    entry: HashMap<String, Vec<u8>>,
) -> redis::RedisResult<Result<(String, HashMap<String, String>), String>> {
    match handover(entry) {
        Handover::Fields { id, fields } => Ok(Ok((id, fields))),
        Handover::Bad(why) => Ok(Err(why)),
        Handover::Undecoded { id, dump, error } => {
            tracing::info!(task_id = %id, %error, "a record dump left to Redis to decode");
            match restore(conn, stream, &dump).await {
                Ok(fields) => Ok(Ok((id, fields))),
                Err(e) if is_bad_dump(&e) => Ok(Err(format!("task {id}: Redis could not restore its record's dump: {e}"))),
                Err(e) => Err(e),
            }
        }
    }
}

/// The fields of a record dump, decoded by Redis itself: `RESTORE` to a key of the stream's
/// own (same hash tag), read, deleted, in one `MULTI`. Slower than [`dump::hash_fields`], for
/// the dumps it refuses. A dump Redis refuses too is an error [`is_bad_dump`] tells.
pub async fn restore(conn: &mut RedisConnection, stream: &str, dump: &[u8]) -> redis::RedisResult<HashMap<String, String>> {
    let key = format!("{stream}:restore");
    let (fields,): (HashMap<String, String>,) = redis::pipe()
        .atomic()
        .cmd("RESTORE")
        .arg(&key)
        .arg(0)
        .arg(dump)
        .arg("REPLACE")
        .ignore()
        .cmd("HGETALL")
        .arg(&key)
        .cmd("DEL")
        .arg(&key)
        .ignore()
        .query_async(conn)
        .await?;
    Ok(fields)
}

/// Whether Redis refused a dump's data itself (its checksum, version or content), which no
/// retry changes; not a lost link or a refused permission.
pub fn is_bad_dump(e: &redis::RedisError) -> bool {
    let text = e.to_string();
    text.contains("DUMP payload") || text.contains("Bad data format")
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
