//! Where a sharded queue's shards live on a Redis Cluster, so that producers can give every
//! master an equal share of the queue's tasks. Each shard is under its own hash tag (its name),
//! and its slot is the CRC16 of that tag: which master holds it is the luck of the name (twelve
//! shards of the bench's queue land 5, 3 and 4 on three masters, so going round the shards
//! gives the busiest master 1.67 times the quietest's tasks). Grouping the shards by master
//! (the Cluster's `CLUSTER SLOTS`) lets [`Broker::pick_shard`] go round the masters first,
//! then round each master's shards.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use redis::Value;

use super::{Broker, BrokerError};
use crate::id::QueueName;

/// How long a process trusts a queue's grouping before reading the slot map again (a
/// resharding moves slots rarely; until then the spread is only less even, never wrong).
const REFRESH: Duration = Duration::from_secs(30);

/// Redis Cluster's number of hash slots.
const SLOTS: u16 = 16384;

/// A queue's shards grouped by the master that holds them, as last read.
#[derive(Debug)]
pub(crate) struct Placement {
    /// The shard count the grouping was made for.
    pub shards: u32,
    read_at: Instant,
    /// The shards' numbers, per master (masters in address order; each group ascending).
    pub groups: Vec<Vec<u32>>,
}

/// The hash slot of a key whose hash tag is `tag` (CRC16/XMODEM, as Redis Cluster computes it,
/// by the crate the redis client routes with).
pub(crate) fn slot_of(tag: &str) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(tag.as_bytes()) % SLOTS
}

/// Groups the shards `0..n` of `queue` by the master whose slot range holds each one's slot.
/// `ranges`: the slot map, `(first slot, last slot, master address)`. A shard whose slot no
/// range holds (a map read mid-change) joins no group.
fn group_by_master(queue: &QueueName, n: u32, ranges: &[(u16, u16, String)]) -> Vec<Vec<u32>> {
    let mut groups: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for i in 0..n {
        let slot = slot_of(queue.shard(i).as_str());
        if let Some((_, _, master)) = ranges.iter().find(|(first, last, _)| (*first..=*last).contains(&slot)) {
            groups.entry(master).or_default().push(i);
        }
    }
    groups.into_values().collect()
}

/// The Cluster's slot map from a `CLUSTER SLOTS` reply: each range and its master's address.
fn slot_ranges(reply: Vec<Value>) -> Vec<(u16, u16, String)> {
    reply
        .into_iter()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else { return None };
            let (Some(Value::Int(first)), Some(Value::Int(last)), Some(Value::Array(master))) = (parts.first(), parts.get(1), parts.get(2))
            else {
                return None;
            };
            let host: String = redis::from_redis_value(master.first()?.clone()).ok()?;
            let Some(Value::Int(port)) = master.get(1) else { return None };
            Some((u16::try_from(*first).ok()?, u16::try_from(*last).ok()?, format!("{host}:{port}")))
        })
        .collect()
}

impl Broker {
    /// Reads which master holds each of `queue`'s `n` shards, on a Cluster, unless this
    /// process read it less than [`REFRESH`] ago for the same count; [`Broker::pick_shard`]
    /// then takes its turns from [`ShardCache::placement`](super::shards::ShardCache). On one
    /// node or Sentinel, nothing. When the slot map cannot be read the grouping is left empty
    /// (the shards are taken in turn) until the next refresh.
    pub(crate) async fn refresh_placement(&self, queue: &QueueName, n: u32) {
        if !self.conn.is_cluster() {
            return;
        }
        {
            // One caller reads the map again; the others meanwhile keep the grouping they have
            // (a busy gateway would otherwise send one CLUSTER SLOTS per request until the
            // first answer is in).
            let mut cache = self.shards.lock().expect("shard cache lock");
            if let Some(p) = cache.placement_mut(queue).filter(|p| p.shards == n) {
                if p.read_at.elapsed() < REFRESH {
                    return;
                }
                p.read_at = Instant::now();
            }
        }
        let groups = match self.slot_map().await {
            Ok(ranges) => group_by_master(queue, n, &ranges),
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "cannot read the Cluster's slot map; taking the shards in turn");
                Vec::new()
            }
        };
        let placement = Placement {
            shards: n,
            read_at: Instant::now(),
            groups,
        };
        self.shards.lock().expect("shard cache lock").set_placement(queue, placement);
    }

    async fn slot_map(&self) -> Result<Vec<(u16, u16, String)>, BrokerError> {
        let reply: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut self.conn.clone()).await?;
        Ok(slot_ranges(reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters_crc16() {
        // Redis Cluster's specification: CRC16/XMODEM of "123456789" is 0x31C3.
        assert_eq!(slot_of("123456789"), 0x31C3);
        // The same as Redis' CLUSTER KEYSLOT (checked against a real Cluster in the sharded
        // queues' tests).
        assert_eq!(slot_of("emails"), 3728);
        assert_eq!(slot_of("bench~3"), 1078);
    }

    #[test]
    fn shards_are_grouped_by_the_master_whose_range_holds_their_slot() {
        let queue = QueueName::parse("bench").unwrap();
        let ranges = vec![
            (0, 5460, "127.0.0.1:7001".to_owned()),
            (5461, 10922, "127.0.0.1:7002".to_owned()),
            (10923, 16383, "127.0.0.1:7003".to_owned()),
        ];
        let groups = group_by_master(&queue, 12, &ranges);
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, [5, 3, 4], "the names' luck on three even ranges");
        let mut all: Vec<u32> = groups.concat();
        all.sort();
        assert_eq!(all, (0..12).collect::<Vec<_>>());
        for (group, (first, last, _)) in groups.iter().zip(&ranges) {
            assert!(group.iter().all(|&i| (*first..=*last).contains(&slot_of(queue.shard(i).as_str()))));
        }
    }

    #[test]
    fn a_slot_map_reply_gives_each_range_and_its_master() {
        let master = |port| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = vec![
            Value::Array(vec![Value::Int(0), Value::Int(8191), master(7001), master(7004)]),
            Value::Array(vec![Value::Int(8192), Value::Int(16383), master(7002)]),
            Value::Nil,
        ];
        assert_eq!(
            slot_ranges(reply),
            vec![(0, 8191, "127.0.0.1:7001".to_owned()), (8192, 16383, "127.0.0.1:7002".to_owned())]
        );
    }
}
