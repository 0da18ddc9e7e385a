//! An invariant checker for tests and operators: walks a namespace (with SCAN, so never on a
//! request path) and reports every task that is not in exactly one place (invariant 2), whose
//! state does not match its place, or that is finished without a TTL (invariant 8).
//! Meaningful when the system is quiet: a walk is not a snapshot.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::fields::field;
use super::{Broker, BrokerError};
use crate::keys::QueueKey;

/// What the walk found.
#[derive(Debug, Default)]
pub struct AuditReport {
    /// Task records seen.
    pub tasks: usize,
    /// One line per broken invariant.
    pub problems: Vec<String>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Broker {
    /// Checks every task of the namespace.
    pub async fn audit(&self) -> Result<AuditReport, BrokerError> {
        let mut conn = self.conn.clone();
        let pattern = self.keys.queue_keys_pattern();
        let mut keys: Vec<String> = Vec::new();
        // SCAN walks one node's keys: on a Cluster, every master's.
        for mut node in self.master_connections().await? {
            let mut iter: redis::AsyncIter<String> = node.scan_match(&pattern).await?;
            while let Some(item) = futures::StreamExt::next(&mut iter).await {
                keys.push(item?);
            }
        }
        // place of each "{queue}:suffix" -> where it was seen
        let mut places: HashMap<String, Vec<String>> = HashMap::new();
        // (queue tag, id suffix, record key)
        let mut records: Vec<(String, String, String)> = Vec::new();
        for key in &keys {
            let Some((tag, kind)) = self.keys.parse_queue_key(key) else {
                continue;
            };
            // The place's members, and its name in the report.
            let (members, place): (Vec<String>, String) = match kind {
                QueueKey::Pending => (conn.lrange(key, 0, -1).await?, "pending".into()),
                QueueKey::Purging => (conn.lrange(key, 0, -1).await?, "purging".into()),
                QueueKey::Parked => {
                    let members: Vec<String> = conn.zrange(key, 0, -1).await?;
                    let suffixes = members.iter().filter_map(|m| m.rsplit_once('\n')).map(|(_, s)| s.to_owned());
                    (suffixes.collect(), "parked".into())
                }
                QueueKey::Scheduled => (conn.zrange(key, 0, -1).await?, "scheduled".into()),
                QueueKey::Retrying => (conn.zrange(key, 0, -1).await?, "retry".into()),
                QueueKey::Inflight(worker) => (super::lease::held_ids(&mut conn, key).await?, format!("held:{worker}")),
                QueueKey::LegacyInflight(worker) => (conn.smembers(key).await?, format!("inflight:{worker}")),
                QueueKey::Task(suffix) => {
                    records.push((tag.to_owned(), suffix.to_owned(), key.clone()));
                    continue;
                }
                QueueKey::Other(_) => continue,
            };
            for m in members {
                places.entry(format!("{tag}:{m}")).or_default().push(place.clone());
            }
        }
        let mut report = AuditReport {
            tasks: records.len(),
            problems: Vec::new(),
        };
        for (tag, suffix, key) in &records {
            let state: Option<String> = conn.hget(key, field::STATE).await?;
            let ttl: i64 = conn.ttl(key).await?;
            let seen = places.remove(&format!("{tag}:{suffix}")).unwrap_or_default();
            let state = state.unwrap_or_default();
            let terminal = matches!(state.as_str(), "SUCCESS" | "FAILURE" | "REVOKED");
            let place_ok = match (state.as_str(), seen.as_slice()) {
                (s, []) if terminal => {
                    if ttl < 0 {
                        report.problems.push(format!("{tag}-{suffix}: finished ({s}) but has no TTL"));
                    }
                    true
                }
                ("PENDING", [p]) => p == "pending" || p == "purging" || p == "parked" || is_held(p),
                ("SCHEDULED", [p]) => p == "scheduled",
                ("RETRY", [p]) => p == "retry",
                ("STARTED", [p]) => is_held(p),
                _ => false,
            };
            if !place_ok {
                report
                    .problems
                    .push(format!("{tag}-{suffix}: state {state:?} but found in {seen:?}"));
            }
        }
        for (id, seen) in places {
            report.problems.push(format!("{id}: listed in {seen:?} but has no record"));
        }
        Ok(report)
    }
}

/// Whether a place is a worker's in-flight hash (or an earlier build's in-flight set).
fn is_held(place: &str) -> bool {
    place.starts_with("held:") || place.starts_with("inflight:")
}
