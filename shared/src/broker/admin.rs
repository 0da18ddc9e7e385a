//! What the admin API and the dashboard read about queues: depths, counters, the last hour of
//! throughput, pause flags. Every read is pipelined, in three round trips whatever the number
//! of tasks: O(queues + workers) commands, never O(tasks).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::fields::{StoredSpec, field};
use super::{Broker, BrokerError};
use crate::clock::to_datetime;
use crate::id::{QueueName, TaskId};

/// How many minutes of throughput a queue overview carries (the `minutes` hash keeps an hour).
pub const THROUGHPUT_MINUTES: i64 = 60;

/// One queue as the admin API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueOverview {
    pub name: String,
    /// Workers take nothing from a paused queue.
    pub paused: bool,
    pub pending: u64,
    /// Waiting for an eta or countdown.
    pub scheduled: u64,
    /// Leased to workers (running, or about to start).
    pub active: u64,
    /// Waiting for their next attempt after a failure.
    pub retrying: u64,
    pub dead: u64,
    pub enqueued_total: u64,
    pub succeeded_total: u64,
    pub failed_total: u64,
    /// Runs that succeeded (failed) in the last 60 seconds, estimated from the per-minute
    /// counts: the current minute's, plus the previous minute's in proportion to the part
    /// of it that is less than 60 s ago.
    pub succeeded_last_minute: u64,
    pub failed_last_minute: u64,
    /// Age of the task that has waited longest in `pending`; null when it is empty.
    pub oldest_pending_age_secs: Option<f64>,
    /// The last 60 minutes, oldest first, the current minute last.
    pub throughput: Vec<MinuteCount>,
    /// How many shards the queue has (1 unless declared with `shards = N`); the counts
    /// above add up all of them.
    pub shards: u32,
    /// Pending tasks of each shard, in shard order (one entry for a plain queue).
    pub shard_pending: Vec<u64>,
    /// The queue's rate limit and concurrency cap, and where they stand (tokens left, slots
    /// in use, what holds its pending tasks back); absent when it has none.
    pub limits: Option<super::LimitsView>,
}

impl QueueOverview {
    /// The overview of a sharded queue: its shards' (in shard order) added up.
    fn merged(name: &QueueName, shards: Vec<QueueOverview>) -> QueueOverview {
        let mut shards = shards.into_iter();
        let mut all = shards.next().expect("a queue has at least one shard");
        all.name = name.to_string();
        for s in shards {
            all.paused |= s.paused;
            all.pending += s.pending;
            all.scheduled += s.scheduled;
            all.active += s.active;
            all.retrying += s.retrying;
            all.dead += s.dead;
            all.enqueued_total += s.enqueued_total;
            all.succeeded_total += s.succeeded_total;
            all.failed_total += s.failed_total;
            all.succeeded_last_minute += s.succeeded_last_minute;
            all.failed_last_minute += s.failed_last_minute;
            all.oldest_pending_age_secs = match (all.oldest_pending_age_secs, s.oldest_pending_age_secs) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            for (m, n) in all.throughput.iter_mut().zip(&s.throughput) {
                m.succeeded += n.succeeded;
                m.failed += n.failed;
            }
            all.shards += 1;
            all.shard_pending.push(s.pending);
            all.limits = super::LimitsView::merged(all.limits, s.limits);
        }
        all
    }
}

/// The queues of `physical` (queues and shards, as in the queue set), each with its shards
/// in shard order, sorted by name.
pub(crate) fn group_shards(physical: Vec<QueueName>) -> Vec<(QueueName, Vec<QueueName>)> {
    let mut by_queue: std::collections::BTreeMap<QueueName, Vec<(u32, QueueName)>> = std::collections::BTreeMap::new();
    for q in physical {
        let (base, n) = q.sharded_queue();
        by_queue.entry(base).or_default().push((n, q));
    }
    by_queue
        .into_iter()
        .map(|(base, mut shards)| {
            shards.sort();
            (base, shards.into_iter().map(|(_, q)| q).collect())
        })
        .collect()
}

/// Runs that ended in one minute.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MinuteCount {
    /// The minute's start.
    pub minute: DateTime<Utc>,
    pub succeeded: u64,
    pub failed: u64,
}

/// Replies of the first pipeline, per queue.
const PER_QUEUE: usize = 11;

impl Broker {
    /// An overview of every queue of the namespace, sorted by name; a sharded queue is one
    /// queue, its shards added up.
    pub async fn queue_overviews(&self) -> Result<Vec<QueueOverview>, BrokerError> {
        let grouped = group_shards(self.queues().await?);
        let physical: Vec<QueueName> = grouped.iter().flat_map(|(_, shards)| shards.iter().cloned()).collect();
        let mut each = self.overviews_of(&physical).await?.into_iter();
        Ok(grouped
            .iter()
            .map(|(queue, shards)| QueueOverview::merged(queue, each.by_ref().take(shards.len()).collect()))
            .collect())
    }

    /// The overview of one queue (known or not), all its shards added up.
    pub async fn queue_overview(&self, queue: &QueueName) -> Result<QueueOverview, BrokerError> {
        let all = self.overviews_of(&self.shards_of(queue).await?).await?;
        Ok(QueueOverview::merged(queue, all))
    }

    /// Pauses (`true`) or resumes the queue (every shard of a sharded one): claim.lua takes
    /// nothing while the flag is set.
    pub async fn set_paused(&self, queue: &QueueName, paused: bool) -> Result<(), BrokerError> {
        for shard in self.shards_of(queue).await? {
            self.remember_queue(&shard).await?;
            let mut conn = self.conn.clone();
            if paused {
                let () = conn.set(self.keys.paused(&shard), "1").await?;
            } else {
                let _: i64 = conn.del(self.keys.paused(&shard)).await?;
            }
        }
        Ok(())
    }

    async fn overviews_of(&self, queues: &[QueueName]) -> Result<Vec<QueueOverview>, BrokerError> {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        let convert = |e: redis::ParsingError| BrokerError::Protocol(e.to_string());
        let mut pipe = redis::pipe();
        for q in queues {
            pipe.exists(self.keys.paused(q))
                .llen(self.keys.pending(q))
                .zcard(self.keys.scheduled(q))
                .zcard(self.keys.retrying(q))
                .zcard(self.keys.dead(q))
                .hgetall(self.keys.stats(q))
                .hgetall(self.keys.minutes(q))
                .lindex(self.keys.pending(q), -1)
                .zrange(self.keys.leases(q), 0, -1)
                .hgetall(self.keys.limits(q))
                .zcard(self.keys.parked(q));
        }
        let replies: Vec<redis::Value> = pipe.query_async(&mut self.conn.clone()).await?;
        let mut oldest: Vec<Option<String>> = Vec::with_capacity(queues.len());
        let mut workers: Vec<Vec<String>> = Vec::with_capacity(queues.len());
        // Second round: the oldest pending task's creation time and the in-flight hash sizes.
        let mut pipe = redis::pipe();
        for (q, r) in queues.iter().zip(replies.chunks_exact(PER_QUEUE)) {
            let suffix: Option<String> = redis::from_redis_value_ref(&r[7]).map_err(convert)?;
            let id = suffix.as_ref().and_then(|s| TaskId::parse(&format!("{q}-{s}")));
            match &id {
                Some(id) => pipe
                    .cmd("HMGET")
                    .arg(self.keys.task(id))
                    .arg(field::SPEC)
                    .arg(field::legacy::CREATED),
                None => pipe.cmd("ECHO").arg(""),
            };
            oldest.push(suffix);
            let leased: Vec<String> = redis::from_redis_value_ref(&r[8]).map_err(convert)?;
            for w in &leased {
                pipe.hlen(self.keys.inflight(q, w));
            }
            workers.push(leased);
        }
        let second: Vec<redis::Value> = pipe.query_async(&mut self.conn.clone()).await?;
        let now = self.clock.now_ms();
        let current_minute = now.div_euclid(60_000);
        let mut second = second.iter();
        let mut out = Vec::with_capacity(queues.len());
        for (i, (q, r)) in queues.iter().zip(replies.chunks_exact(PER_QUEUE)).enumerate() {
            // [spec, creation ms of a record stored before the spec field]; "" without a task
            let created: Option<i64> = second
                .next()
                .and_then(|v| redis::from_redis_value_ref::<Vec<Option<String>>>(v).ok())
                .and_then(|fields| match fields.as_slice() {
                    [Some(spec), _] => StoredSpec::parse(spec).created_ms_of(oldest[i].as_deref().unwrap_or_default()),
                    [None, Some(legacy)] => legacy.parse().ok(),
                    _ => None,
                });
            let mut active = 0u64;
            for _ in &workers[i] {
                let n: u64 = second
                    .next()
                    .map(redis::from_redis_value_ref)
                    .transpose()
                    .map_err(convert)?
                    .unwrap_or(0);
                active += super::lease::held_count(n);
            }
            let counters: HashMap<String, u64> = redis::from_redis_value_ref(&r[5]).map_err(convert)?;
            let limits = super::limits::LimitsHash(redis::from_redis_value_ref(&r[9]).map_err(convert)?);
            // Tasks parked for their key's slot are pending too.
            let parked: u64 = redis::from_redis_value_ref(&r[10]).map_err(convert)?;
            let minutes: HashMap<String, u64> = redis::from_redis_value_ref(&r[6]).map_err(convert)?;
            let count = |name: &str| counters.get(name).copied().unwrap_or(0);
            let throughput = throughput(&minutes, current_minute);
            let recent = |pick: fn(&MinuteCount) -> u64| last_minute(&throughput, now, pick);
            out.push(QueueOverview {
                name: q.to_string(),
                paused: redis::from_redis_value_ref(&r[0]).map_err(convert)?,
                pending: redis::from_redis_value_ref::<u64>(&r[1]).map_err(convert)? + parked,
                scheduled: redis::from_redis_value_ref(&r[2]).map_err(convert)?,
                active,
                retrying: redis::from_redis_value_ref(&r[3]).map_err(convert)?,
                dead: redis::from_redis_value_ref(&r[4]).map_err(convert)?,
                enqueued_total: count("enqueued"),
                succeeded_total: count("succeeded"),
                failed_total: count("failed"),
                succeeded_last_minute: recent(|m| m.succeeded),
                failed_last_minute: recent(|m| m.failed),
                // A pending entry whose record is gone has no age: 0 rather than null, since
                // the list is not empty.
                oldest_pending_age_secs: oldest[i].as_ref().map(|_| {
                    let created = created.unwrap_or(now);
                    ((now - created).max(0) as f64) / 1000.0
                }),
                throughput,
                shards: 1,
                shard_pending: Vec::new(),
                limits: super::limits::LimitsHash::view(std::slice::from_ref(&limits), now).map(|v| v.with_parked(parked)),
            });
        }
        // Tasks of a priority above 0 wait in their level's list: pending too.
        for (o, q) in out.iter_mut().zip(queues) {
            o.pending += self.pending_in_levels(q).await?;
            o.shard_pending = vec![o.pending];
        }
        Ok(out)
    }
}

/// A count over the last 60 s from the two newest minutes of `throughput` (see
/// [`QueueOverview::succeeded_last_minute`]).
fn last_minute(throughput: &[MinuteCount], now_ms: i64, pick: fn(&MinuteCount) -> u64) -> u64 {
    let [.., previous, current] = throughput else {
        return throughput.last().map_or(0, pick);
    };
    let still_recent = 1.0 - now_ms.rem_euclid(60_000) as f64 / 60_000.0;
    pick(current) + (pick(previous) as f64 * still_recent).round() as u64
}

/// The 60 minutes ending with `current_minute`, oldest first, zeros where nothing ended.
fn throughput(minutes: &HashMap<String, u64>, current_minute: i64) -> Vec<MinuteCount> {
    (current_minute - THROUGHPUT_MINUTES + 1..=current_minute)
        .map(|m| MinuteCount {
            minute: to_datetime(m * 60_000).unwrap_or_default(),
            succeeded: minutes.get(&format!("s:{m}")).copied().unwrap_or(0),
            failed: minutes.get(&format!("f:{m}")).copied().unwrap_or(0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_has_sixty_minutes_oldest_first_with_zeros_filled() {
        let minutes = HashMap::from([
            ("s:100".to_owned(), 3),
            ("f:100".to_owned(), 1),
            ("s:50".to_owned(), 2),
            ("s:30".to_owned(), 9),
        ]);
        let t = throughput(&minutes, 100);
        assert_eq!(t.len(), 60);
        assert_eq!(t[0].minute.timestamp(), 41 * 60);
        assert_eq!((t[59].succeeded, t[59].failed), (3, 1));
        assert_eq!(t[9].succeeded, 2, "minute 50");
        assert_eq!(t.iter().map(|m| m.succeeded).sum::<u64>(), 5, "minute 30 is older than an hour");
    }

    #[test]
    fn the_last_minute_counts_the_current_minute_and_the_recent_part_of_the_previous() {
        let minutes = HashMap::from([("s:99".to_owned(), 10), ("s:100".to_owned(), 3)]);
        let t = throughput(&minutes, 100);
        let at = |secs: i64| last_minute(&t, 100 * 60_000 + secs * 1000, |m| m.succeeded);
        assert_eq!(at(0), 13, "at the turn of the minute all of the previous one is recent");
        assert_eq!(at(30), 8);
        assert_eq!(at(59), 3);
    }
}
