//! The task types a worker process can run, by name. The worker binary fills it; the runtime
//! looks handlers up by the name stored in each task.

use std::collections::BTreeMap;
use std::sync::Arc;

use celeriac::{Task, TaskError, TaskSpec};

use crate::remote::RemoteTasks;
use crate::task_type::Registered;

/// Task types by name.
#[derive(Clone, Default)]
pub struct Registry {
    tasks: BTreeMap<String, Registered>,
    /// Remote task types, looked up when a name is not registered here ([`Registry::resolve`]).
    remote: Option<Arc<RemoteTasks>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tasks.keys()).finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a task type; a later registration under the same name replaces the earlier one.
    pub fn register<T: Task>(&mut self, task: T) -> &mut Self {
        let spec = task.spec();
        let task = Arc::new(task);
        let name = spec.name.clone();
        let registered = Registered::from_fn(spec, move |ctx, args| {
            let decoded: Result<T::Args, _> = serde_json::from_str(args);
            let task = Arc::clone(&task);
            Box::pin(async move {
                let args = decoded.map_err(|e| TaskError::permanent(format!("arguments do not fit: {e}")).with_kind("InvalidArgs"))?;
                let output = task.run(ctx, args).await?;
                serde_json::to_string(&output)
                    .map_err(|e| TaskError::permanent(format!("result is not JSON: {e}")).with_kind("InvalidResult"))
            })
        });
        self.tasks.insert(name, registered);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Registered> {
        self.tasks.get(name)
    }

    /// Runs remote task types too (the worker runtime turns this on).
    pub fn enable_remote(&mut self, remote: RemoteTasks) -> &mut Self {
        self.remote = Some(Arc::new(remote));
        self
    }

    /// The handler of `name`: a task type registered here, else a remote task type.
    pub async fn resolve(&self, broker: &celeriac::Broker, name: &str) -> Option<Registered> {
        if let Some(registered) = self.tasks.get(name) {
            return Some(registered.clone());
        }
        match &self.remote {
            Some(remote) => remote.lookup(broker, name).await,
            None => None,
        }
    }

    pub fn specs(&self) -> impl Iterator<Item = &TaskSpec> {
        self.tasks.values().map(|r| &r.spec)
    }
}
