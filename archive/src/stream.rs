//! The archive streams as the archivers see them: one per queue (`Keys::archive`), read by
//! one consumer group, so several archivers share the work and an entry read by one that died
//! stays pending until another claims it (XAUTOCLAIM). An entry is acknowledged and deleted
//! only after its rows are committed. What an entry hands over ([`handovers`]): each task the
//! script that wrote it ended, with its record's `DUMP` (dump.rs decodes it; Redis,
//! [`restore`], one it cannot), or, from the first builds, one task's record fields. Also the
//! backlog, for metrics.

use std::collections::HashMap;

use celeriac::broker::RedisConnection;
use celeriac::{Broker, BrokerError, QueueName};

/// The consumer group every archiver joins.
pub const GROUP: &str = "archivers";

use celeriac::broker::streams;

use crate::dump::{self, DumpError};

/// An archive stream entry: for each task one script call ended, its id (`_i`, text) and its
/// record's `DUMP` (`_d`, bytes; dump.rs), one pair after the other; or, from earlier builds,
/// one task's id (`_id`) with its record's `DUMP` or its record's fields themselves.
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

/// The field holding a task's id, before its `DUMP` (`_d`), in an entry of one script call's
/// endings (lua/archive.lua).
pub const TASK_FIELD: &str = "_i";
/// The field holding a record's `DUMP`, after its task's id.
pub const DUMP_FIELD: &str = "_d";
/// The task id field of the earlier builds' entries: one task each, with its `DUMP` (`_d`) or,
/// the first builds, its record's fields. A name of its own for the new entries makes an
/// archiver of those builds skip them with a warning ("an entry without its task id") instead
/// of archiving one task of each and dropping the others unsaid.
pub const ID_FIELD: &str = "_id";

/// What an entry hands over of one task.
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

/// What the entry's fields hand over, task by task: each task id (`_i`, or `_id` in an entry
/// of an earlier build) and the `_d` after it, the record's dump decoded; or (an entry of the
/// first builds, which has no `_d`) one task's record fields themselves.
pub fn handovers(fields: Vec<(String, Vec<u8>)>) -> Vec<Handover> {
    if !fields.iter().any(|(name, _)| name == DUMP_FIELD) {
        return vec![record_fields(fields)];
    }
    let mut out = Vec::with_capacity(fields.len() / 2);
    let no_dump = |id: String| Handover::Bad(format!("task {id}: no dump after its id"));
    let mut id = None;
    for (name, value) in fields {
        match name.as_str() {
            TASK_FIELD | ID_FIELD => {
                out.extend(id.take().map(no_dump));
                match String::from_utf8(value) {
                    Ok(text) => id = Some(text),
                    Err(_) => out.push(Handover::Bad("a task id that is not UTF-8".into())),
                }
            }
            DUMP_FIELD => out.push(match id.take() {
                Some(id) => match dump::hash_fields(&value) {
                    Ok(fields) => Handover::Fields { id, fields },
                    Err(error) => Handover::Undecoded { id, dump: value, error },
                },
                None => Handover::Bad("a dump without its task id".into()),
            }),
            _ => out.push(Handover::Bad(format!("a field this archiver does not know: {name:?}"))),
        }
    }
    out.extend(id.map(no_dump));
    out
}

/// An entry of the first builds: one task's id and its record's fields.
fn record_fields(fields: Vec<(String, Vec<u8>)>) -> Handover {
    let mut id = None;
    let mut record = HashMap::with_capacity(fields.len());
    for (name, value) in fields {
        let Ok(value) = String::from_utf8(value) else {
            return Handover::Bad(format!("field {name:?} is not UTF-8"));
        };
        if name == ID_FIELD {
            id = Some(value);
        } else {
            record.insert(name, value);
        }
    }
    match id {
        Some(id) => Handover::Fields { id, fields: record },
        None => Handover::Bad("an entry without its task id".into()),
    }
}

/// The task id and record fields of one task an entry hands over ([`handovers`]; a dump the
/// decoder refuses is decoded by Redis, [`restore`]), or why it never can be a row: the outer
/// error is a failure to reach Redis (or a refused permission), to try again, so nothing is
/// skipped that might still pass.
pub async fn record_of(
    conn: &mut RedisConnection,
    stream: &str,
    handover: Handover,
) -> redis::RedisResult<Result<(String, HashMap<String, String>), String>> {
    match handover {
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

/// Whether Redis refused a dump's data itself (its checksum, version or content), or restored
/// it as something other than a hash (`WRONGTYPE` from the `HGETALL`): no retry changes either.
/// Not a lost link or a refused permission.
pub fn is_bad_dump(e: &redis::RedisError) -> bool {
    let text = e.to_string();
    // Inside the MULTI, a command's error is reported as a pipeline failure naming its code.
    ["DUMP payload", "Bad data format", "WRONGTYPE"]
        .iter()
        .any(|refusal| text.contains(refusal))
}

/// What a queue's archive stream still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueBacklog {
    pub queue: QueueName,
    /// Hand-overs not archived yet (entries are deleted once archived), each holding the
    /// endings of one script call: one to a few hundred.
    pub entries: u64,
    /// Of those, the ones an archiver has read and not yet committed.
    pub pending: u64,
    /// When the oldest of them was handed over (its stream id's time), ms since the epoch.
    pub oldest_ms: i64,
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
        let first: Vec<(String, redis::Value)> = redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        let oldest_ms = first.first().map_or(0, |(id, _)| streams::id_ms(id));
        out.push(QueueBacklog {
            queue,
            entries,
            pending,
            oldest_ms,
        });
    }
    Ok(out)
}
