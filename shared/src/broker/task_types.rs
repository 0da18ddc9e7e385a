//! The stored catalogue of remote task types (`remote.rs`): put, read, list and delete. A put
//! also registers the type's name, queue and options beside the workers' task types, so the
//! gateway accepts calls of it at once; a delete removes both.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::{Broker, BrokerError};
use crate::remote::RemoteTaskType;

impl Broker {
    /// Stores (or replaces) a remote task type. Returns `true` when it is new.
    pub async fn put_task_type(&self, ty: &RemoteTaskType) -> Result<bool, BrokerError> {
        let json = serde_json::to_string(ty).expect("a task type serializes");
        let spec = serde_json::to_string(&ty.spec()).expect("a spec serializes");
        let (created,): (i64,) = redis::pipe()
            .hset(self.keys.task_types(), &ty.name, json)
            .hset(self.keys.registry(), &ty.name, spec)
            .ignore()
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(created == 1)
    }

    /// One remote task type, if there is one by that name.
    pub async fn task_type(&self, name: &str) -> Result<Option<RemoteTaskType>, BrokerError> {
        let json: Option<String> = self.conn.clone().hget(self.keys.task_types(), name).await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// Every remote task type, by name.
    pub async fn task_types(&self) -> Result<Vec<RemoteTaskType>, BrokerError> {
        let all: HashMap<String, String> = self.conn.clone().hgetall(self.keys.task_types()).await?;
        let mut types: Vec<RemoteTaskType> = all.values().filter_map(|j| serde_json::from_str(j).ok()).collect();
        types.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(types)
    }

    /// Removes a remote task type (and its registration). Returns `false` when there was none.
    pub async fn delete_task_type(&self, name: &str) -> Result<bool, BrokerError> {
        let (removed,): (i64,) = redis::pipe()
            .hdel(self.keys.task_types(), name)
            .hdel(self.keys.registry(), name)
            .ignore()
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(removed == 1)
    }

    /// Stores the task types declared in the settings (a process's start).
    pub async fn publish_task_types(&self, declared: &[RemoteTaskType]) -> Result<(), BrokerError> {
        for ty in declared {
            self.put_task_type(ty).await?;
        }
        Ok(())
    }
}
