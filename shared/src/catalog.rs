//! The one enqueue path: the task names producers may use (the built-in ones, plus those that
//! running workers registered in Redis, refreshed every few seconds), where each goes (the
//! settings' routes, else the task type's queue), the queues' limits, and the rules that turn
//! a call into the task to store ([`Catalog::prepare`]). The gateway's `POST /tasks`,
//! `/emails` and `/reports`, workflows, schedules and the beat all go through here, so a new
//! option is added in one place (`call.rs` and `task.rs`), and checked the same way for all.

mod refreshed;

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use self::refreshed::Refreshed;

use crate::broker::NewTask;
use crate::builtin::FieldError;
use crate::call::CallOptions;
use crate::id::fallback_queue;
use crate::settings::TaskSettings;
use crate::task::{TaskOptions, TaskSpec};
use crate::{Broker, QueueName};

/// Why a call cannot be stored as given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// No built-in or registered task has this name; `known` lists those that do.
    #[error("unknown task {name:?}")]
    UnknownTask { name: String, known: Vec<String> },
    /// A field of the call is invalid; the error names it (`queue`, `countdown`, `args.to`...).
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(FieldError),
    /// The arguments are larger than `[tasks] max_args_bytes` (answered 413).
    #[error("args: {size} bytes of JSON, over the limit of {limit} bytes (tasks.max_args_bytes)")]
    ArgsTooLarge { size: usize, limit: usize },
}

impl From<FieldError> for CallError {
    fn from(e: FieldError) -> Self {
        Self::Invalid(e)
    }
}

/// A task type resolved for a call: its spec, its queue, and its options with the type's
/// defaults filled in.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub spec: TaskSpec,
    pub queue: QueueName,
    pub options: TaskOptions,
}

pub struct Catalog {
    builtin: Vec<TaskSpec>,
    /// The task types running workers registered, as last read.
    registered: Refreshed<Vec<TaskSpec>>,
    /// Task name -> queue, from the settings; wins over a task type's default queue.
    routes: BTreeMap<String, QueueName>,
    /// Queue -> most pending tasks (0 or absent: no limit).
    max_pending: BTreeMap<QueueName, u64>,
    /// Whether a task may name a `callback_url`: only when webhooks can be signed (a
    /// `[webhooks] secret` is set; see [`Catalog::with_webhooks`]).
    webhooks: bool,
    /// The queues' webhook subscriptions (queue -> URL), as last read.
    subscriptions: Refreshed<HashMap<String, String>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("routes", &self.routes).finish_non_exhaustive()
    }
}

impl Catalog {
    pub fn new(tasks: &TaskSettings) -> Self {
        Self {
            builtin: crate::builtin::specs(),
            registered: Refreshed::new("registered task types"),
            routes: tasks.routes.clone(),
            max_pending: tasks.max_pending.clone(),
            webhooks: true,
            subscriptions: Refreshed::new("webhook subscriptions"),
        }
    }

    /// Accepts `callback_url` only if `webhooks` (the process has a `[webhooks] secret`, so
    /// the workers of the same settings sign and deliver them); else it is refused naming the
    /// field, rather than accepted and never delivered.
    pub fn with_webhooks(mut self, webhooks: &crate::settings::WebhookSettings) -> Self {
        self.webhooks = webhooks.secret.is_some();
        self
    }

    /// Checks a call of `task` with `args` and turns it into the task to store: the task is
    /// known, built-in tasks' arguments are valid, the queue is the call's or the route, the
    /// options are valid and filled from the task type's defaults, and the call's timing
    /// (countdown or eta, expiry) is within bounds. The id is a fresh one; callers with their
    /// own (a schedule's occurrence, a workflow member) set it after.
    pub async fn prepare(&self, broker: &Broker, task: &str, args: &Value, call: &CallOptions, now_ms: i64) -> Result<NewTask, CallError> {
        crate::builtin::validate_args(task, args)?;
        let mut resolved = self.resolve_queue(broker, task, call.queue.as_deref(), &call.options).await?;
        if call.partition_key.as_deref().is_some_and(str::is_empty) {
            return Err(FieldError::new("partition_key", "must not be empty").into());
        }
        // On a sharded queue, a unique task's repeats must meet its lock, and a debounced
        // call its burst's key, which live under one shard's hash tag: the lock's or the
        // burst's name picks the shard unless the call's partition key does.
        let unique = match &call.partition_key {
            None if resolved.options.unique_for.is_some() => {
                let text = serde_json::to_string(args).expect("a JSON value serializes");
                crate::broker::unique_key(task, &text, &resolved.options)
            }
            None if resolved.options.debounce.is_some() => {
                Some(format!("debounce:{}", resolved.options.debounce_key.as_deref().unwrap_or(task)))
            }
            _ => None,
        };
        let partition = call.partition_key.as_deref().or(unique.as_deref());
        resolved.queue = broker.pick_shard(&resolved.queue, partition).await;
        let mut new = NewTask::new(&resolved.queue, task, args);
        let limit = broker.payload().max_args_bytes;
        if new.args.len() > limit {
            return Err(CallError::ArgsTooLarge {
                size: new.args.len(),
                limit,
            });
        }
        new.options = resolved.options;
        new.due_ms = call.due_ms(now_ms)?;
        new.expires_ms = call.expires_ms(now_ms)?;
        Ok(new)
    }

    /// The part of [`Catalog::prepare`] that needs no arguments (a workflow member's are
    /// completed by its predecessors' results when it is enqueued): the task is known, the
    /// queue is `queue` or the route, the options are valid and filled from the type's
    /// defaults. On a sharded queue, the queue is the shard the task goes to (in turn).
    pub async fn resolve(&self, broker: &Broker, task: &str, queue: Option<&str>, options: &TaskOptions) -> Result<Resolved, CallError> {
        let mut resolved = self.resolve_queue(broker, task, queue, options).await?;
        resolved.queue = broker.pick_shard(&resolved.queue, None).await;
        Ok(resolved)
    }

    /// [`Catalog::resolve`] up to the queue, before a shard is picked.
    async fn resolve_queue(&self, broker: &Broker, task: &str, queue: Option<&str>, options: &TaskOptions) -> Result<Resolved, CallError> {
        let spec = self.lookup(broker, task).await.map_err(|known| CallError::UnknownTask {
            name: task.to_owned(),
            known,
        })?;
        let queue = match queue {
            Some(q) => match QueueName::parse(q).map_err(|m| FieldError::new("queue", m))? {
                // Tasks are spread over the shards by the gateway, which keeps the partition
                // keys' order; a caller naming a shard would break it.
                shard if shard.is_shard() => return Err(FieldError::new("queue", "name a queue, not one of its shards").into()),
                queue => queue,
            },
            None => self.route(&spec),
        };
        options.validate().map_err(|(field, message)| FieldError::new(field, message))?;
        let mut options = options.or(&spec.options);
        // A queue subscribed to webhooks gives its tasks its URL, unless they name their own
        // (only where webhooks can be signed: a gateway without a secret takes no subscription).
        if options.callback_url.is_none() && self.webhooks {
            options.callback_url = self.subscription(broker, &queue).await;
        }
        if options.callback_url.is_some() && !self.webhooks {
            return Err(FieldError::new("callback_url", crate::settings::WebhookSettings::NO_SECRET).into());
        }
        Ok(Resolved { spec, queue, options })
    }

    /// Most pending tasks of `queue`; 0 for no limit. For a shard of a sharded queue, its
    /// share of the queue's limit (each shard is checked on its own, in its script).
    pub fn max_pending(&self, broker: &Broker, queue: &QueueName) -> u64 {
        let (base, _) = queue.sharded_queue();
        match self.max_pending.get(&base).copied().unwrap_or(0) {
            0 => 0,
            max => max.div_ceil(u64::from(broker.cached_shard_count(&base))),
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

    /// The queue of `name` for a caller that may not refuse it (the settings' schedules, read
    /// before the workers that register their tasks may have started): its route, else its
    /// task type's queue, else `default`.
    pub async fn route_name(&self, broker: &Broker, name: &str) -> QueueName {
        if let Some(queue) = self.routes.get(name) {
            return queue.clone();
        }
        match self.lookup(broker, name).await {
            Ok(spec) => spec.queue,
            Err(_) => fallback_queue(),
        }
    }

    /// The callback URL `queue` is subscribed to, if any, as read at most a few seconds ago.
    async fn subscription(&self, broker: &Broker, queue: &QueueName) -> Option<String> {
        let read = || broker.webhook_subscriptions();
        self.subscriptions.get(false, read, |all| all.get(queue.as_str()).cloned()).await
    }

    /// Reads the subscriptions again at the next enqueue (after this process changed one).
    pub async fn forget_subscriptions(&self) {
        self.subscriptions.forget().await;
    }

    async fn registered(&self, broker: &Broker, force: bool) -> Vec<TaskSpec> {
        self.registered.get(force, || broker.registered_tasks(), Vec::clone).await
    }
}
