//! The task names the gateway accepts: the built-in ones, plus those that running workers
//! registered in Redis (custom worker binaries), refreshed every few seconds.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use celeriac::{Broker, QueueName, TaskSpec};
use tokio::sync::RwLock;

const REFRESH: Duration = Duration::from_secs(5);

pub struct Catalog {
    builtin: Vec<TaskSpec>,
    registered: RwLock<(Option<Instant>, Vec<TaskSpec>)>,
    /// Task name -> queue, from the settings; wins over a task type's default queue.
    routes: BTreeMap<String, QueueName>,
}

impl Catalog {
    pub fn new(routes: BTreeMap<String, QueueName>) -> Self {
        Self {
            builtin: celeriac::builtin::specs(),
            registered: RwLock::new((None, Vec::new())),
            routes,
        }
    }

    /// The spec of `name`, or `Err` with every known name.
    pub async fn lookup(&self, broker: &Broker, name: &str) -> Result<TaskSpec, Vec<String>> {
        if let Some(spec) = self.builtin.iter().find(|s| s.name == name) {
            return Ok(spec.clone());
        }
        let mut registered = self.registered(broker, false).await;
        if !registered.iter().any(|s| s.name == name) {
            // A worker may have registered it since the last read: look again before refusing.
            registered = self.registered(broker, true).await;
        }
        if let Some(spec) = registered.iter().find(|s| s.name == name) {
            return Ok(spec.clone());
        }
        let mut known: Vec<String> = self.builtin.iter().chain(registered.iter()).map(|s| s.name.clone()).collect();
        known.sort();
        known.dedup();
        Err(known)
    }

    /// The queue a task goes to when the caller names none.
    pub fn route(&self, spec: &TaskSpec) -> QueueName {
        self.routes.get(&spec.name).cloned().unwrap_or_else(|| spec.queue.clone())
    }

    async fn registered(&self, broker: &Broker, force: bool) -> Vec<TaskSpec> {
        if !force {
            let cache = self.registered.read().await;
            if cache.0.is_some_and(|at| at.elapsed() < REFRESH) {
                return cache.1.clone();
            }
        }
        let fresh = match broker.registered_tasks().await {
            Ok(specs) => specs,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read registered task types; using the last known");
                return self.registered.read().await.1.clone();
            }
        };
        *self.registered.write().await = (Some(Instant::now()), fresh.clone());
        fresh
    }
}
