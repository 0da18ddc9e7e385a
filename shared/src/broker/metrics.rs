//! What `GET /metrics` reads, in O(queues + workers) commands: each queue's counters (the
//! `stats` hash kept by enqueue.lua and finish.lua) and depths (LLEN, ZCARD), and the task
//! metrics snapshots that workers publish at every heartbeat (see [`crate::metrics`]).

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;

use super::{Broker, BrokerError};
use crate::metrics::MetricsSnapshot;

/// One queue's counters (since the namespace was first used) and depths (now).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub queue: String,
    pub enqueued: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub retried: u64,
    pub revoked: u64,
    pub pending: u64,
    pub scheduled: u64,
    pub dead: u64,
    /// The queue's limits as they stand (`None` without limits).
    pub limits: Option<super::LimitsView>,
}

impl Broker {
    /// Counters and depths of every queue of the namespace (a sharded queue's shards added
    /// up), in one round trip after the queue set is read.
    pub async fn queue_stats(&self) -> Result<Vec<QueueStats>, BrokerError> {
        let grouped = super::admin::group_shards(self.queues().await?);
        let queues: Vec<_> = grouped.iter().flat_map(|(_, shards)| shards.iter().cloned()).collect();
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for queue in &queues {
            pipe.hgetall(self.keys.stats(queue))
                .llen(self.keys.pending(queue))
                .zcard(self.keys.scheduled(queue))
                .zcard(self.keys.dead(queue))
                .hgetall(self.keys.limits(queue))
                .zcard(self.keys.parked(queue));
        }
        let now = self.clock.now_ms();
        let replies: Vec<redis::Value> = pipe.query_async(&mut self.conn.clone()).await?;
        let convert = |e: redis::ParsingError| BrokerError::Protocol(e.to_string());
        let mut each: Vec<QueueStats> = queues
            .iter()
            .zip(replies.chunks_exact(6))
            .map(|(queue, r)| {
                let counters: HashMap<String, u64> = redis::from_redis_value_ref(&r[0]).map_err(convert)?;
                let count = |name: &str| counters.get(name).copied().unwrap_or(0);
                // Tasks parked for their key's slot are pending too.
                let parked: u64 = redis::from_redis_value_ref(&r[5]).map_err(convert)?;
                Ok(QueueStats {
                    queue: queue.to_string(),
                    enqueued: count("enqueued"),
                    succeeded: count("succeeded"),
                    failed: count("failed"),
                    retried: count("retried"),
                    revoked: count("revoked"),
                    pending: redis::from_redis_value_ref::<u64>(&r[1]).map_err(convert)? + parked,
                    scheduled: redis::from_redis_value_ref(&r[2]).map_err(convert)?,
                    dead: redis::from_redis_value_ref(&r[3]).map_err(convert)?,
                    limits: super::limits::LimitsHash::view(
                        &[super::limits::LimitsHash(redis::from_redis_value_ref(&r[4]).map_err(convert)?)],
                        now,
                    )
                    .map(|v| v.with_parked(parked)),
                })
            })
            .collect::<Result<_, BrokerError>>()?;
        // Tasks of a priority above 0 wait in their level's list: pending too.
        for (s, q) in each.iter_mut().zip(&queues) {
            s.pending += self.pending_in_levels(q).await?;
        }
        let mut each = each.into_iter();
        Ok(grouped
            .iter()
            .map(|(queue, shards)| {
                let mut sum = QueueStats {
                    queue: queue.to_string(),
                    ..QueueStats::default()
                };
                for s in each.by_ref().take(shards.len()) {
                    sum.enqueued += s.enqueued;
                    sum.succeeded += s.succeeded;
                    sum.failed += s.failed;
                    sum.retried += s.retried;
                    sum.revoked += s.revoked;
                    sum.pending += s.pending;
                    sum.scheduled += s.scheduled;
                    sum.dead += s.dead;
                    sum.limits = super::LimitsView::merged(sum.limits.take(), s.limits);
                }
                sum
            })
            .collect())
    }

    /// Stores `worker`'s task metrics for `ttl` (each heartbeat rewrites them).
    pub async fn publish_worker_metrics(&self, worker: &str, snapshot: &MetricsSnapshot, ttl: Duration) -> Result<(), BrokerError> {
        let json = serde_json::to_string(snapshot).expect("metrics serialize");
        let () = self
            .conn
            .clone()
            .set_ex(self.keys.worker_metrics(worker), json, ttl.as_secs().max(1))
            .await?;
        Ok(())
    }

    /// The last published task metrics of each of `workers` (`None`: expired or unreadable).
    pub async fn worker_metrics(&self, workers: &[String]) -> Result<Vec<Option<MetricsSnapshot>>, BrokerError> {
        if workers.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = workers.iter().map(|w| self.keys.worker_metrics(w)).collect();
        let found: Vec<Option<String>> = self.conn.clone().mget(keys).await?;
        Ok(found
            .into_iter()
            .map(|json| json.and_then(|j| serde_json::from_str(&j).ok()))
            .collect())
    }
}
