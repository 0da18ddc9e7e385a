//! The task listing behind `GET /tasks` and the dead letters behind `GET /queues/{q}/dead`.
//!
//! Tasks are listed newest first from the queues' time indexes (`index` sorted sets: id suffix
//! by creation ms), merged by score across queues; same-ms entries come in reverse
//! lexicographic order of suffix. A [`ListCursor`] `(score, suffix)` marks the last entry
//! examined, so the next page starts right after it, with no duplicate and no gap. The work per
//! page is bounded (`budget` index entries examined), so a rare filter may answer a short or
//! even empty page with a cursor to go on. Index entries whose record expired are dropped.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::{Broker, BrokerError};
use crate::id::{QueueName, TaskId};
use crate::record::TaskRecord;
use crate::state::TaskState;

/// A position in the newest-first order: the creation ms and the id suffix of an entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListCursor {
    pub score: i64,
    pub suffix: String,
}

impl ListCursor {
    /// Parses `<ms>-<32 hex>`, the form [`ListCursor::to_string`] writes.
    pub fn parse(raw: &str) -> Option<Self> {
        let (score, suffix) = raw.split_once('-')?;
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if suffix.len() != 32 || !suffix.chars().all(hex) {
            return None;
        }
        Some(Self {
            score: score.parse().ok().filter(|s: &i64| *s >= 0)?,
            suffix: suffix.to_owned(),
        })
    }
}

impl std::fmt::Display for ListCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.score, self.suffix)
    }
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this queue; `None`: every queue of the namespace.
    pub queue: Option<QueueName>,
    pub state: Option<TaskState>,
    pub task: Option<String>,
}

/// One page of the listing.
#[derive(Debug, Clone)]
pub struct TaskPage {
    pub tasks: Vec<TaskRecord>,
    /// Where the next page starts; `None` when every entry has been examined.
    pub next: Option<ListCursor>,
}

/// One index entry, in a queue.
#[derive(Debug, Clone)]
struct Entry {
    key: ListCursor,
    queue: QueueName,
}

impl Broker {
    /// Up to `limit` records matching `filter`, newest first, after `after`; examines at most
    /// `budget` index entries.
    pub async fn list_tasks(
        &self,
        filter: &ListFilter,
        limit: usize,
        budget: usize,
        after: Option<ListCursor>,
    ) -> Result<TaskPage, BrokerError> {
        let queues = match &filter.queue {
            Some(q) => vec![q.clone()],
            None => self.queues().await?,
        };
        let chunk = limit.max(10);
        let mut cursor = after;
        let mut tasks = Vec::new();
        let mut examined = 0;
        loop {
            let (entries, exhausted) = self.next_entries(&queues, cursor.as_ref(), chunk).await?;
            if entries.is_empty() {
                return Ok(TaskPage { tasks, next: None });
            }
            let take = entries.len().min(budget - examined);
            let records = self.records(&entries[..take]).await?;
            for (entry, record) in entries[..take].iter().zip(records) {
                examined += 1;
                cursor = Some(entry.key.clone());
                if let Some(r) = record.filter(|r| matches(filter, r)) {
                    tasks.push(r);
                    if tasks.len() == limit {
                        return Ok(TaskPage { tasks, next: cursor });
                    }
                }
            }
            if exhausted && take == entries.len() {
                return Ok(TaskPage { tasks, next: None });
            }
            if examined >= budget {
                return Ok(TaskPage { tasks, next: cursor });
            }
        }
    }

    /// The next entries after `cursor` in the merged order that are certainly in order (the
    /// merge stops where a queue's fetched chunk ends), and whether every queue is exhausted.
    async fn next_entries(
        &self,
        queues: &[QueueName],
        cursor: Option<&ListCursor>,
        chunk: usize,
    ) -> Result<(Vec<Entry>, bool), BrokerError> {
        if queues.is_empty() {
            return Ok((Vec::new(), true));
        }
        let mut conn = self.conn.clone();
        // Entries sharing the cursor's ms must be fetched too, to skip the ones already seen.
        let ties: Vec<usize> = match cursor {
            Some(c) => {
                let mut pipe = redis::pipe();
                for q in queues {
                    pipe.zcount(self.keys.index(q), c.score, c.score);
                }
                pipe.query_async(&mut conn).await?
            }
            None => vec![0; queues.len()],
        };
        let mut pipe = redis::pipe();
        for (q, ties) in queues.iter().zip(&ties) {
            let max = cursor.map_or("+inf".to_owned(), |c| c.score.to_string());
            pipe.zrevrangebyscore_limit_withscores(self.keys.index(q), max, "-inf", 0, (chunk + ties) as isize);
        }
        let replies: Vec<Vec<(String, f64)>> = pipe.query_async(&mut conn).await?;
        let mut merged = Vec::new();
        let mut watermark: Option<ListCursor> = None;
        for ((q, ties), reply) in queues.iter().zip(&ties).zip(replies) {
            let full = reply.len() == chunk + ties;
            let entries: Vec<Entry> = reply
                .into_iter()
                .map(|(suffix, score)| Entry {
                    key: ListCursor {
                        score: score as i64,
                        suffix,
                    },
                    queue: q.clone(),
                })
                .filter(|e| cursor.is_none_or(|c| e.key < *c))
                .collect();
            if let (true, Some(last)) = (full, entries.last()) {
                // Older entries of this queue were not fetched: nothing older than its last
                // fetched one can be placed yet.
                if watermark.as_ref().is_none_or(|w| last.key > *w) {
                    watermark = Some(last.key.clone());
                }
            }
            merged.extend(entries);
        }
        merged.sort_by(|a, b| b.key.cmp(&a.key));
        let exhausted = watermark.is_none();
        if let Some(w) = watermark {
            merged.retain(|e| e.key >= w);
        }
        Ok((merged, exhausted))
    }

    /// The records of `entries` (one pipeline); entries whose record is gone are dropped from
    /// their index.
    async fn records(&self, entries: &[Entry]) -> Result<Vec<Option<TaskRecord>>, BrokerError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Option<TaskId>> = entries
            .iter()
            .map(|e| TaskId::parse(&format!("{}-{}", e.queue, e.key.suffix)))
            .collect();
        let mut pipe = redis::pipe();
        for id in &ids {
            match id {
                Some(id) => pipe.hgetall(self.keys.task(id)),
                None => pipe.cmd("ECHO").arg(""),
            };
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut self.conn.clone()).await?;
        let mut gone = redis::pipe();
        let mut any_gone = false;
        let mut out = Vec::with_capacity(entries.len());
        for ((entry, id), reply) in entries.iter().zip(ids).zip(replies) {
            let fields: HashMap<String, String> = redis::from_redis_value(reply).unwrap_or_default();
            let record = id.and_then(|id| {
                if fields.is_empty() {
                    None
                } else {
                    TaskRecord::from_hash(id, fields)
                }
            });
            if record.is_none() {
                gone.zrem(self.keys.index(&entry.queue), &entry.key.suffix).ignore();
                any_gone = true;
            }
            out.push(record);
        }
        if any_gone {
            let () = gone.query_async(&mut self.conn.clone()).await?;
        }
        Ok(out)
    }

    /// The queue's dead letters, newest first, with their records (those whose record expired
    /// are left out).
    pub async fn dead_letters(&self, queue: &QueueName, limit: usize) -> Result<Vec<TaskRecord>, BrokerError> {
        let suffixes: Vec<String> = self
            .conn
            .clone()
            .zrevrange(self.keys.dead(queue), 0, limit.max(1) as isize - 1)
            .await?;
        let ids: Vec<TaskId> = suffixes.iter().filter_map(|s| TaskId::parse(&format!("{queue}-{s}"))).collect();
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

fn matches(filter: &ListFilter, record: &TaskRecord) -> bool {
    filter.state.is_none_or(|s| record.state == s) && filter.task.as_ref().is_none_or(|t| record.task == *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let c = ListCursor {
            score: 1_732_480_000_000,
            suffix: "0193a1b2c3d4e5f60718293a4b5c6d7e".into(),
        };
        assert_eq!(ListCursor::parse(&c.to_string()), Some(c));
        for bad in [
            "",
            "x",
            "12-zz",
            "-1-0193a1b2c3d4e5f60718293a4b5c6d7e",
            "abc-0193a1b2c3d4e5f60718293a4b5c6d7e",
        ] {
            assert!(ListCursor::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn newer_entries_order_first_and_same_ms_ties_by_suffix() {
        let at = |score, suffix: &str| ListCursor {
            score,
            suffix: suffix.into(),
        };
        let mut keys = vec![at(1, "a"), at(2, "a"), at(2, "b"), at(3, "a")];
        keys.sort_by(|a, b| b.cmp(a));
        assert_eq!(keys, [at(3, "a"), at(2, "b"), at(2, "a"), at(1, "a")]);
    }
}
