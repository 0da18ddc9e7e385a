//! Sharded queues: a queue declared with `shards = N` is N queues in Redis (`emails`,
//! `emails~1`, ... `emails~N-1`, see [`QueueName::shard`]), each under its own hash tag, so a
//! Cluster spreads them over its nodes and one hot queue is no longer bound to one node. The
//! scripts do not know: each shard is a plain queue to them, and a task's id names its shard,
//! so `GET /tasks/{id}` stays one read.
//!
//! The number of shards lives in Redis (`<ns>:shards`, [`Keys::shards`](crate::keys::Keys::shards))
//! so that every gateway and worker agrees; the settings and the admin API only ever raise it
//! (lowering it would strand the tasks of the higher shards). Enqueue picks a shard in turn
//! (per queue and process), or by a partition key's hash, which keeps one key's tasks in one
//! shard and so in order; workers consume every shard (one fetch loop each); the admin reads
//! add the shards up into one queue.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use super::placement::Placement;
use super::{Broker, BrokerError, scripts};
use crate::digest::{FNV_OFFSET, fnv1a};
use crate::id::{MAX_SHARDS, QueueName};

/// How long a process trusts the shard counts it read before reading them again.
const REFRESH: Duration = Duration::from_secs(5);

/// The shard counts a process last read, where each queue's round robin stands, and on a
/// Cluster which master holds each shard (placement.rs).
#[derive(Debug, Default)]
pub(crate) struct ShardCache {
    read_at: Option<Instant>,
    counts: HashMap<QueueName, u32>,
    turn: HashMap<QueueName, u64>,
    placements: HashMap<QueueName, Placement>,
}

impl ShardCache {
    fn count(&self, queue: &QueueName) -> u32 {
        self.counts.get(queue).copied().unwrap_or(1)
    }

    pub(crate) fn placement(&self, queue: &QueueName) -> Option<&Placement> {
        self.placements.get(queue)
    }

    pub(crate) fn placement_mut(&mut self, queue: &QueueName) -> Option<&mut Placement> {
        self.placements.get_mut(queue)
    }

    pub(crate) fn set_placement(&mut self, queue: &QueueName, placement: Placement) {
        self.placements.insert(queue.clone(), placement);
    }
}

/// The shard of `n` whose turn `turn` is: round the groups (the masters), then round the
/// group's shards; round all `n` shards without groups.
fn next_in_turn(turn: u64, n: u32, groups: Option<&[Vec<u32>]>) -> u32 {
    match groups {
        Some(groups) if !groups.is_empty() => {
            let m = groups.len() as u64;
            let group = &groups[(turn % m) as usize];
            group[((turn / m) % group.len() as u64) as usize]
        }
        _ => (turn % u64::from(n)) as u32,
    }
}

/// The shard of `n` a partition key goes to: FNV-1a, the same in every process and build.
pub fn shard_of_key(key: &str, n: u32) -> u32 {
    (fnv1a(FNV_OFFSET, key.as_bytes()) % u64::from(n.max(1))) as u32
}

impl Broker {
    /// How many shards `queue` has (1 for a plain queue), as last read (at most a few seconds
    /// ago; on an outage, the last known).
    pub async fn shard_count(&self, queue: &QueueName) -> u32 {
        let fresh = {
            let cache = self.shards.lock().expect("shard cache lock");
            cache.read_at.is_some_and(|at| at.elapsed() < REFRESH)
        };
        if !fresh && let Err(e) = self.shard_counts().await {
            tracing::warn!(error = %e, "cannot read the shard counts; using the last known");
        }
        self.cached_shard_count(queue)
    }

    /// The shard count of `queue` as last read, without asking Redis.
    pub fn cached_shard_count(&self, queue: &QueueName) -> u32 {
        self.shards.lock().expect("shard cache lock").count(&queue.sharded_queue().0)
    }

    /// Every sharded queue's number of shards, read now.
    pub async fn shard_counts(&self) -> Result<HashMap<QueueName, u32>, BrokerError> {
        let raw: HashMap<String, u32> = self.conn.clone().hgetall(self.keys.shards()).await?;
        let counts: HashMap<QueueName, u32> = raw
            .into_iter()
            .filter_map(|(q, n)| Some((QueueName::parse(&q).ok()?, n.clamp(1, MAX_SHARDS))))
            .collect();
        let mut cache = self.shards.lock().expect("shard cache lock");
        cache.counts = counts.clone();
        cache.read_at = Some(Instant::now());
        Ok(counts)
    }

    /// Every shard of `queue`, read now (for the admin's reads and writes: pause, purge):
    /// `[queue]` for a plain queue, or for a shard named on its own.
    pub async fn shards_of(&self, queue: &QueueName) -> Result<Vec<QueueName>, BrokerError> {
        if queue.is_shard() {
            return Ok(vec![queue.clone()]);
        }
        let n: Option<u32> = self.conn.clone().hget(self.keys.shards(), queue.as_str()).await?;
        Ok((0..n.unwrap_or(1).clamp(1, MAX_SHARDS)).map(|i| queue.shard(i)).collect())
    }

    /// The shard a new task of `queue` goes to: by `partition_key`'s hash when given (one
    /// key's tasks stay in one shard, in order), else the next in turn: on a Cluster, round
    /// the masters that hold its shards, then round each master's shards, so every master
    /// gets an equal share whatever the shards' slots (placement.rs). `queue` itself when it
    /// has one shard.
    pub async fn pick_shard(&self, queue: &QueueName, partition_key: Option<&str>) -> QueueName {
        let n = self.shard_count(queue).await;
        if n <= 1 {
            return queue.clone();
        }
        if let Some(key) = partition_key {
            return queue.shard(shard_of_key(key, n));
        }
        self.refresh_placement(queue, n).await;
        let mut cache = self.shards.lock().expect("shard cache lock");
        let turn = cache.turn.entry(queue.clone()).or_insert_with(|| fastrand::u64(..));
        *turn = turn.wrapping_add(1);
        let turn = *turn;
        let groups = cache.placement(queue).filter(|p| p.shards == n).map(|p| p.groups.as_slice());
        queue.shard(next_in_turn(turn, n, groups))
    }

    /// Raises `queue`'s number of shards to `n` (never lowers it); returns the number now.
    pub async fn raise_shards(&self, queue: &QueueName, n: u32) -> Result<u32, BrokerError> {
        if queue.is_shard() {
            return Err(BrokerError::InvalidTask(format!("{queue} is a shard, not a queue")));
        }
        if !(1..=MAX_SHARDS).contains(&n) {
            return Err(BrokerError::InvalidTask(format!("shards must be from 1 to {MAX_SHARDS}")));
        }
        let now: u32 = scripts::SHARDS_RAISE
            .key(self.keys.shards())
            .arg(queue.as_str())
            .arg(n)
            .invoke_async(&mut self.conn.clone())
            .await?;
        for i in 0..now {
            self.remember_queue(&queue.shard(i)).await?;
        }
        self.shards.lock().expect("shard cache lock").counts.insert(queue.clone(), now);
        Ok(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_go_round_the_masters_then_round_each_masters_shards() {
        // Twelve shards, 5, 3 and 4 on three masters: each master gets a third of the turns,
        // and within a master each shard an equal part of its third.
        let groups = vec![vec![0, 3, 5, 8, 11], vec![1, 6, 9], vec![2, 4, 7, 10]];
        let mut per_shard = [0u32; 12];
        for turn in 0..60 * 12 {
            per_shard[next_in_turn(turn, 12, Some(&groups)) as usize] += 1;
        }
        let per_master: Vec<u32> = groups.iter().map(|g| g.iter().map(|&i| per_shard[i as usize]).sum()).collect();
        assert_eq!(per_master, [240, 240, 240]);
        assert_eq!(per_shard[0], 48);
        assert_eq!(per_shard[1], 80);
        // Without groups (one node, Sentinel): round the shards.
        let plain: Vec<u32> = (0..4).map(|turn| next_in_turn(turn, 3, None)).collect();
        assert_eq!(plain, [0, 1, 2, 0]);
    }

    #[test]
    fn a_partition_key_always_goes_to_the_same_shard_and_keys_spread() {
        assert_eq!(shard_of_key("customer-42", 8), shard_of_key("customer-42", 8));
        assert_eq!(shard_of_key("anything", 1), 0);
        let mut seen = [0u32; 4];
        for i in 0..400 {
            seen[shard_of_key(&format!("key-{i}"), 4) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (60..=140).contains(&n)), "{seen:?}");
    }
}
