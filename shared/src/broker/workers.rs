//! The namespace-wide registry of live worker processes, for `GET /workers` and operators.
//! Leases that protect tasks live per queue (see `claim.lua`); this registry only describes.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Broker, BrokerError};

/// What a worker says about itself at every heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerInfo {
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// One PID namespace on one boot of one machine (`host/boot id/pid namespace`): a worker
    /// with the same host id can tell from the process table whether this one is alive.
    /// Absent from an earlier build's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// When the process started (clock ticks after boot), so a reused pid is not taken for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
    pub queues: Vec<String>,
    pub concurrency: usize,
    /// Tasks running at the last heartbeat.
    pub running: usize,
    /// Runs finished by this process (any outcome) and, of those, failed for good.
    pub processed: u64,
    pub failed: u64,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub last_heartbeat: chrono::DateTime<chrono::Utc>,
}

impl Broker {
    /// Announces the worker (and refreshes its description) for `lease`.
    pub async fn register_worker(&self, info: &WorkerInfo, lease: Duration) -> Result<(), BrokerError> {
        let expiry = self.clock.now_ms() + lease.as_millis() as i64;
        let json = serde_json::to_string(info).expect("worker info serializes");
        redis::pipe()
            .zadd(self.keys.workers(), &info.id, expiry)
            .ignore()
            .set_ex(self.keys.worker_info(&info.id), json, lease.as_secs().max(1) * 2)
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Removes the worker from the registry (clean stop).
    pub async fn unregister_worker(&self, id: &str) -> Result<(), BrokerError> {
        redis::pipe()
            .zrem(self.keys.workers(), id)
            .ignore()
            .del(self.keys.worker_info(id))
            .ignore()
            .query_async::<()>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Workers whose registration has not expired, and drops the expired ones.
    pub async fn live_workers(&self) -> Result<Vec<WorkerInfo>, BrokerError> {
        let now = self.clock.now_ms();
        let mut conn = self.conn.clone();
        let _: i64 = conn.zrembyscore(self.keys.workers(), "-inf", now - 1).await?;
        let ids: Vec<String> = conn.zrangebyscore(self.keys.workers(), now, "+inf").await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.worker_info(id)).collect();
        let infos: Vec<Option<String>> = conn.mget(keys).await?;
        let mut by_id: HashMap<String, WorkerInfo> = infos
            .into_iter()
            .flatten()
            .filter_map(|j| serde_json::from_str::<WorkerInfo>(&j).ok())
            .map(|w| (w.id.clone(), w))
            .collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }
}

impl Broker {
    /// The registry entries of `ids` that have one (a worker's entry outlives its lease).
    pub async fn worker_infos(&self, ids: &[String]) -> Result<Vec<WorkerInfo>, BrokerError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.worker_info(id)).collect();
        let infos: Vec<Option<String>> = self.conn.clone().mget(keys).await?;
        Ok(infos.into_iter().flatten().filter_map(|j| serde_json::from_str(&j).ok()).collect())
    }
}

impl Broker {
    /// Publishes the task types a worker can run, so the gateway accepts their names.
    pub async fn register_tasks(&self, specs: &[crate::task::TaskSpec]) -> Result<(), BrokerError> {
        if specs.is_empty() {
            return Ok(());
        }
        let items: Vec<(String, String)> = specs
            .iter()
            .map(|s| (s.name.clone(), serde_json::to_string(s).expect("spec serializes")))
            .collect();
        let () = self.conn.clone().hset_multiple(self.keys.registry(), &items).await?;
        Ok(())
    }

    /// Task types registered by workers, by name.
    pub async fn registered_tasks(&self) -> Result<Vec<crate::task::TaskSpec>, BrokerError> {
        let all: HashMap<String, String> = self.conn.clone().hgetall(self.keys.registry()).await?;
        Ok(all.values().filter_map(|j| serde_json::from_str(j).ok()).collect())
    }
}
