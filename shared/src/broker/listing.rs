//! The task listing behind `GET /tasks` and the dead letters behind `GET /queues/{q}/dead`.
//!
//! Each queue keeps a listing log: a list with one entry per task, pushed at its head by the
//! enqueue script (one variadic `LPUSH` per call, far cheaper than a sorted set's per-task
//! insert). An entry's sequence number counts the queue's tasks before it,
//! so it never changes; the log is capped at [`LISTING_MAX`](super::enqueue::LISTING_MAX) entries,
//! the oldest going first. Tasks are listed newest first: the queues' logs are merged by creation
//! ms (ties by queue name). An entry is the task's id suffix when the id holds its creation ms
//! (a UUID v7 made in the ms of its enqueue, whose record leaves that ms out too: 14 bytes a
//! task less in Redis), else `<created ms>-<suffix>`; either way its ms is the record's
//! `created_at`. A [`ListCursor`] holds, for each queue not yet exhausted, the sequence number
//! of its next entry to examine, so the next page starts right after the last entry
//! examined, with no duplicate and no gap, whatever was enqueued meanwhile. The work per page is
//! bounded (`budget` entries examined), so a rare filter may answer a short or even empty page
//! with a cursor to go on. Entries whose record expired are skipped (the cap removes them).

use std::collections::{BTreeMap, HashMap, VecDeque};

use redis::AsyncCommands;

use super::{Broker, BrokerError, scripts};
use crate::id::{QueueName, TaskId, made_ms_of};
use crate::record::TaskRecord;
use crate::state::TaskState;

/// Where a listing goes on: per queue, the sequence number of the next entry to examine.
/// Queues missing from it are exhausted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListCursor {
    next: BTreeMap<QueueName, u64>,
}

impl ListCursor {
    /// Parses `<seq>.<queue>,<seq>.<queue>...`, the form its `Display` writes.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut next = BTreeMap::new();
        for part in raw.split(',') {
            let (seq, queue) = part.split_once('.')?;
            if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            next.insert(QueueName::parse(queue).ok()?, seq.parse().ok()?);
        }
        Some(Self { next })
    }
}

impl std::fmt::Display for ListCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (queue, seq)) in self.next.iter().enumerate() {
            write!(f, "{}{seq}.{queue}", if i == 0 { "" } else { "," })?;
        }
        Ok(())
    }
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this queue; `None`: every queue of the namespace.
    pub queue: Option<QueueName>,
    pub state: Option<TaskState>,
    pub task: Option<String>,
    /// Only tasks carrying this tag (name, value).
    pub tag: Option<(String, String)>,
}

/// One page of the listing.
#[derive(Debug, Clone)]
pub struct TaskPage {
    pub tasks: Vec<TaskRecord>,
    /// Where the next page starts; `None` when every entry has been examined.
    pub next: Option<ListCursor>,
}

/// One entry of a queue's listing log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    created_ms: i64,
    queue: QueueName,
    seq: u64,
    suffix: String,
}

impl Entry {
    /// Reads a time-ordered suffix alone, or `<created ms>-<suffix>` (any other task; every
    /// entry before 2026-12-05). A damaged entry still takes its place in the order (its record is
    /// then not found), so the walk goes on past it.
    fn parse(queue: &QueueName, seq: u64, raw: &str) -> Self {
        let (created_ms, suffix) = match raw.split_once('-') {
            Some((ms, suffix)) => (ms.parse().unwrap_or(0), suffix),
            None => (made_ms_of(raw).unwrap_or(0), raw),
        };
        Self {
            created_ms,
            queue: queue.clone(),
            seq,
            suffix: suffix.to_owned(),
        }
    }
}

/// A queue's entries fetched from its listing log, oldest last, and whether its log ends there.
struct Fetched {
    entries: VecDeque<Entry>,
    ends: bool,
}

impl Broker {
    /// Up to `limit` records matching `filter`, newest first, after `after`; examines at most
    /// `budget` listing entries.
    pub async fn list_tasks(
        &self,
        filter: &ListFilter,
        limit: usize,
        budget: usize,
        after: Option<ListCursor>,
    ) -> Result<TaskPage, BrokerError> {
        let queues = match &filter.queue {
            // A sharded queue's listing merges its shards' logs, like every queue's.
            Some(q) => self.shards_of(q).await?,
            None => self.queues().await?,
        };
        // Each queue's next sequence number to examine; `None`: from its newest entry.
        let mut next: BTreeMap<QueueName, Option<u64>> = match &after {
            None => queues.into_iter().map(|q| (q, None)).collect(),
            Some(c) => queues.into_iter().filter_map(|q| c.next.get(&q).map(|&s| (q, Some(s)))).collect(),
        };
        let chunk = limit.max(10);
        let mut tasks = Vec::new();
        let mut examined = 0;
        while !next.is_empty() && examined < budget {
            let mut fetched = self.fetch_logs(&next, chunk).await?;
            for (queue, f) in &fetched {
                match f.entries.front() {
                    Some(first) => next.insert(queue.clone(), Some(first.seq)),
                    None => next.remove(queue),
                };
            }
            let picks = merge(&mut fetched, budget - examined);
            let records = self.records(&picks).await?;
            for (i, (entry, record)) in picks.iter().zip(records).enumerate() {
                examined += 1;
                match entry.seq.checked_sub(1) {
                    Some(older) => next.insert(entry.queue.clone(), Some(older)),
                    None => next.remove(&entry.queue), // its first task: nothing is older
                };
                let taken = record.filter(|r| matches(filter, r)).map(|r| tasks.push(r)).is_some();
                if taken && tasks.len() == limit {
                    drop_exhausted(&mut next, &fetched, &picks[i + 1..]);
                    return Ok(TaskPage {
                        tasks,
                        next: cursor(&next),
                    });
                }
            }
            drop_exhausted(&mut next, &fetched, &[]);
        }
        Ok(TaskPage {
            tasks,
            next: cursor(&next),
        })
    }

    /// Up to `chunk` entries of each queue's log from its next sequence number (one pipeline of
    /// listing.lua calls; a queue's length and its entries must be read in one step).
    async fn fetch_logs(&self, next: &BTreeMap<QueueName, Option<u64>>, chunk: usize) -> Result<BTreeMap<QueueName, Fetched>, BrokerError> {
        // A pipeline does not load a script on NOSCRIPT by itself: load it first (cheap).
        let mut pipe = redis::pipe();
        pipe.load_script(&scripts::LISTING).ignore();
        let calls: Vec<_> = next
            .iter()
            .map(|(q, seq)| {
                let mut call = scripts::LISTING.key(self.keys.listing(q));
                call.key(self.keys.stats(q)).arg(seq.map_or(-1, |s| s as i64)).arg(chunk);
                call
            })
            .collect();
        for call in &calls {
            pipe.invoke_script(call);
        }
        let replies: Vec<Vec<String>> = pipe.query_async(&mut self.conn.clone()).await?;
        let mut out = BTreeMap::new();
        for (q, reply) in next.keys().zip(replies) {
            let Some((first, raw)) = reply.split_first() else {
                return Err(BrokerError::Protocol("listing returned nothing".into()));
            };
            // -1 for an empty log: no entries then.
            let first: i64 = first
                .parse()
                .map_err(|_| BrokerError::Protocol(format!("listing sequence {first:?}")))?;
            let entries = raw
                .iter()
                .zip((0..=first).rev())
                .map(|(raw, seq)| Entry::parse(q, seq as u64, raw))
                .collect();
            let ends = raw.len() < chunk;
            out.insert(q.clone(), Fetched { entries, ends });
        }
        Ok(out)
    }

    /// The records of `entries` (one pipeline); `None` where the record is gone.
    async fn records(&self, entries: &[Entry]) -> Result<Vec<Option<TaskRecord>>, BrokerError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Option<TaskId>> = entries
            .iter()
            .map(|e| TaskId::parse(&format!("{}-{}", e.queue, e.suffix)))
            .collect();
        let mut pipe = redis::pipe();
        for id in &ids {
            match id {
                Some(id) => pipe.hgetall(self.keys.task(id)),
                None => pipe.cmd("ECHO").arg(""),
            };
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(ids
            .into_iter()
            .zip(replies)
            .map(|(id, reply)| {
                let fields: HashMap<String, String> = redis::from_redis_value(reply).unwrap_or_default();
                id.filter(|_| !fields.is_empty()).and_then(|id| TaskRecord::from_hash(id, fields))
            })
            .collect())
    }

    /// The queue's dead letters, newest first, with their records (those whose record expired
    /// are left out).
    /// A sharded queue's are its shards' together, newest first.
    pub async fn dead_letters(&self, queue: &QueueName, limit: usize) -> Result<Vec<TaskRecord>, BrokerError> {
        let mut dead: Vec<(f64, TaskId)> = Vec::new();
        for shard in self.shards_of(queue).await? {
            let newest: Vec<(String, f64)> = self
                .conn
                .clone()
                .zrevrange_withscores(self.keys.dead(&shard), 0, limit.max(1) as isize - 1)
                .await?;
            dead.extend(newest.into_iter().filter_map(|(s, at)| Some((at, TaskId::on(&shard, &s)?))));
        }
        dead.sort_by(|a, b| b.0.total_cmp(&a.0));
        dead.truncate(limit.max(1));
        let ids: Vec<TaskId> = dead.into_iter().map(|(_, id)| id).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.keys.task(id));
        }
        let replies: Vec<HashMap<String, String>> = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(ids
            .into_iter()
            .zip(replies)
            .filter(|(_, h)| !h.is_empty())
            .filter_map(|(id, h)| TaskRecord::from_hash(id, h))
            .collect())
    }
}

/// Takes up to `most` entries from the fetched logs, newest first (by creation ms, then queue
/// name). Stops where a queue whose log goes on has no fetched entry left: its next ones
/// could be newer than any other queue's.
fn merge(fetched: &mut BTreeMap<QueueName, Fetched>, most: usize) -> Vec<Entry> {
    let mut picks = Vec::new();
    while picks.len() < most {
        if fetched.values().any(|f| f.entries.is_empty() && !f.ends) {
            break;
        }
        let newest = fetched.values_mut().filter(|f| !f.entries.is_empty()).max_by(|a, b| {
            let (a, b) = (&a.entries[0], &b.entries[0]);
            a.created_ms.cmp(&b.created_ms).then_with(|| b.queue.cmp(&a.queue))
        });
        match newest.and_then(|f| f.entries.pop_front()) {
            Some(entry) => picks.push(entry),
            None => break,
        }
    }
    picks
}

/// Forgets the queues whose log ended with the fetched entries, once none of those is left
/// to examine (in the merge's leftovers or in `unexamined` picks).
fn drop_exhausted(next: &mut BTreeMap<QueueName, Option<u64>>, fetched: &BTreeMap<QueueName, Fetched>, unexamined: &[Entry]) {
    for (queue, f) in fetched {
        if f.ends && f.entries.is_empty() && !unexamined.iter().any(|e| e.queue == *queue) {
            next.remove(queue);
        }
    }
}

/// The cursor of what is left; `None` when every queue is exhausted.
fn cursor(next: &BTreeMap<QueueName, Option<u64>>) -> Option<ListCursor> {
    let next: BTreeMap<QueueName, u64> = next.iter().filter_map(|(q, s)| s.map(|s| (q.clone(), s))).collect();
    (!next.is_empty()).then_some(ListCursor { next })
}

fn matches(filter: &ListFilter, record: &TaskRecord) -> bool {
    filter.state.is_none_or(|s| record.state == s)
        && filter.task.as_ref().is_none_or(|t| record.task == *t)
        && filter
            .tag
            .as_ref()
            .is_none_or(|(name, value)| record.options.tags.as_ref().and_then(|tags| tags.get(name)) == Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(name: &str) -> QueueName {
        QueueName::parse(name).unwrap()
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let c = ListCursor {
            next: [(q("emails"), 12), (q("re.ports-2"), 0)].into_iter().collect(),
        };
        assert_eq!(c.to_string(), "12.emails,0.re.ports-2");
        assert_eq!(ListCursor::parse(&c.to_string()), Some(c));
        for bad in ["", "x", "12", ".emails", "-1.emails", "1.", "1.bad queue", "1.a,,2.b", "abc.emails"] {
            assert!(ListCursor::parse(bad).is_none(), "{bad}");
        }
    }

    fn fetched(queue: &str, entries: &[(i64, u64)], ends: bool) -> (QueueName, Fetched) {
        let entries = entries
            .iter()
            .map(|&(created_ms, seq)| Entry {
                created_ms,
                queue: q(queue),
                seq,
                suffix: format!("{seq:032x}"),
            })
            .collect();
        (q(queue), Fetched { entries, ends })
    }

    #[test]
    fn the_merge_takes_the_newest_first_and_stops_where_a_log_goes_on_unfetched() {
        let mut logs: BTreeMap<_, _> = [
            fetched("a", &[(30, 5), (10, 4)], false),
            fetched("b", &[(20, 9), (20, 8), (5, 7)], true),
        ]
        .into_iter()
        .collect();
        let picks: Vec<(i64, String)> = merge(&mut logs, 100)
            .into_iter()
            .map(|e| (e.created_ms, e.queue.to_string()))
            .collect();
        // After a's (10, 4), a's log goes on unfetched: b's (5, 7) must wait.
        assert_eq!(picks, [(30, "a".into()), (20, "b".into()), (20, "b".into()), (10, "a".into())]);
    }

    #[test]
    fn an_entry_is_a_time_ordered_suffix_alone_or_a_creation_ms_and_a_suffix() {
        let time_ordered = "019a3f4c5d6e7000800000000000002a";
        let entry = Entry::parse(&q("a"), 3, time_ordered);
        assert_eq!((entry.created_ms, entry.suffix.as_str()), (0x019a3f4c5d6e, time_ordered));
        let derived = "9c1185a5c5e9fc54612808977ee8f548";
        let entry = Entry::parse(&q("a"), 4, &format!("1764626000123-{derived}"));
        assert_eq!((entry.created_ms, entry.suffix.as_str()), (1_764_626_000_123, derived));
    }

    #[test]
    fn same_ms_entries_of_two_queues_go_by_queue_name() {
        let mut logs: BTreeMap<_, _> = [fetched("b", &[(7, 1)], true), fetched("a", &[(7, 3)], true)].into_iter().collect();
        let order: Vec<String> = merge(&mut logs, 100).into_iter().map(|e| e.queue.to_string()).collect();
        assert_eq!(order, ["a", "b"]);
    }
}
