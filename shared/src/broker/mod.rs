//! The Redis broker: typed calls over the Lua scripts in `lua/`, one script per atomic change
//! of a task's place (enqueue, claim, start, finish, requeue) so that a task is always in
//! exactly one place (docs/design.md, invariant 2), and reads of task records.

mod admin;
mod audit;
mod batcher;
mod connection;
mod debounce;
mod decode;
mod enqueue;
mod events;
mod fields;
mod history;
mod lease;
mod limits;
mod listing;
mod lost_reply;
mod metrics;
mod new_task;
mod placement;
mod priority;
mod purge;
mod revoke;
mod runs;
mod schedules;
mod scripts;
mod shards;
pub mod streams;
mod task_types;
mod unique;
mod wait;
mod webhooks;
mod workers;
mod workflow;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;

pub use crate::limits::{LimitError, MAX_LIMIT, QueueLimits, Rate};
pub use crate::settings::target::{RedisTarget, TargetError, TlsFiles, Topology};
/// How a run ended, from the task model (`task.rs`): [`Broker::finish`] takes it.
pub use crate::task::Verdict;
pub use admin::{MinuteCount, QueueOverview, THROUGHPUT_MINUTES};
pub use audit::AuditReport;
pub use batcher::EnqueueBatcher;
pub use connection::{Connector, RedisConnection};
pub use events::{TaskEvents, broadcast_recv};
pub use history::TaskEvent;
pub use lease::{
    Ack, Claim, DEAD_LETTERS_MAX, DEAD_LETTERS_MAX_AGE_SECS, Delivery, Fetched, Hold, Outcome, Started, fetch_script_hash, new_claim_token,
};
pub use limits::{LimitsOutcome, LimitsSource, LimitsView};
pub use listing::{ListCursor, ListFilter, TaskPage};
pub use metrics::QueueStats;
pub use new_task::{EnqueueOutcome, Idempotency, NewTask};
pub use revoke::{RetryOutcome, RevokeOutcome, control};
pub use schedules::{DeleteOutcome, FiredRun, PutOutcome, ScheduleEntry, ScheduleSource, ScheduleState};
pub use shards::shard_of_key;
pub(crate) use unique::unique_key;
pub use unique::{UniqueLock, UniqueRelease};
pub use wait::QueueWaiter;
pub use webhooks::{WEBHOOK_GROUP, WebhookEnding};
pub use workers::WorkerInfo;
pub use workflow::{FailedMember, MemberRef, MemberStatus, WorkflowOutcome, WorkflowStarted, WorkflowStatus, parse_workflow_id};

use crate::clock::Clock;
use crate::id::{QueueName, TaskId};
use crate::keys::Keys;
use crate::record::TaskRecord;
use crate::settings::Durability;

/// What can go wrong talking to the broker. Only `Redis` is an outage; the others are answers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    /// Redis could not be reached or answered with an error. Never shown to HTTP clients.
    #[error("redis: {0}")]
    Redis(redis::RedisError),
    #[error("queue {queue} is full ({depth} pending)")]
    QueueFull { queue: QueueName, depth: u64 },
    #[error("a task with id {0} exists already")]
    Duplicate(TaskId),
    /// `durability = "replicated"`: the write is on the master, but no replica acknowledged
    /// it in time, so it could still be lost with the master.
    #[error("no replica acknowledged the write within {0:?}")]
    NotReplicated(Duration),
    #[error("unexpected reply from a broker script: {0}")]
    Protocol(String),
    /// A task the store cannot hold as given (a library caller's bug; the gateway checks first).
    #[error("invalid task: {0}")]
    InvalidTask(String),
    /// Limits a queue cannot take (limits.rs), naming the field.
    #[error("invalid limit {}: {}", .0.field, .0.message)]
    InvalidLimit(LimitError),
}

impl From<redis::RedisError> for BrokerError {
    /// A reply of the wrong shape is our bug, not an outage: it must not look like one.
    fn from(e: redis::RedisError) -> Self {
        match e.kind() {
            redis::ErrorKind::UnexpectedReturnType | redis::ErrorKind::Parse => Self::Protocol(e.to_string()),
            _ => Self::Redis(e),
        }
    }
}

/// Why a process cannot start with its `[redis]` settings, in one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// A target that cannot be used, as a client-configuration error naming the setting.
fn invalid_target(e: TargetError) -> BrokerError {
    BrokerError::Redis(redis::RedisError::from((
        redis::ErrorKind::InvalidClientConfig,
        "invalid redis target",
        e.to_string(),
    )))
}

/// A handle to the broker: cheap to clone, shared by every task of a process. Concurrent callers
/// share one multiplexed connection, so their commands are pipelined automatically.
#[derive(Clone)]
pub struct Broker {
    conn: RedisConnection,
    connector: Connector,
    keys: Keys,
    clock: Clock,
    result_ttl_secs: u64,
    /// Most entries each queue's listing log keeps ([`enqueue::LISTING_MAX`] unless set).
    listing_max: u64,
    /// Queues this process has already added to the namespace's queue set.
    known_queues: Arc<Mutex<HashSet<QueueName>>>,
    /// Queues this process learned have priority lists (a claim answered so): its claims
    /// there take them too ([`priority`]).
    prioritized: Arc<Mutex<HashSet<QueueName>>>,
    /// Queues that answered a fetch with "claim and start" (paused, or with priority lists or
    /// limits), and until when (ms) this process does so without asking (lease.rs).
    two_step: Arc<Mutex<HashMap<QueueName, i64>>>,
    /// Whether the scripts that end tasks hand each ending over to the archive (its queue's
    /// archive stream, lua/archive.lua). Every process that ends tasks (workers, gateway)
    /// must agree, or endings recorded by one with it off never reach the archive.
    archive: bool,
    /// Payload limits and the compression threshold of stored arguments and results.
    payload: crate::payload::PayloadLimits,
    /// `durability = "replicated"`: how long a write waits for one replica's acknowledgement
    /// (`None`: Redis's asynchronous replication, nothing waits).
    replica_wait: Option<Duration>,
    /// The shard counts last read, shared by the clones (shards.rs).
    shards: Arc<Mutex<shards::ShardCache>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("namespace", &self.keys.namespace()).finish()
    }
}

impl Broker {
    /// Prepares a connection to the Redis `url` (any topology, see [`RedisTarget`]; no TLS
    /// files). It is opened on first use and re-opened after an outage, so a process can start
    /// while Redis is down and recovers by itself when it returns.
    pub fn connect(url: &str, namespace: &str, result_ttl: Duration) -> Result<Self, BrokerError> {
        let target = RedisTarget::parse(url, &TlsFiles::default()).map_err(invalid_target)?;
        Self::connect_to(target, namespace, result_ttl)
    }

    /// Like [`Broker::connect`], to a parsed target (with its TLS files).
    pub fn connect_to(target: RedisTarget, namespace: &str, result_ttl: Duration) -> Result<Self, BrokerError> {
        let connector = Connector::new(target)?;
        Ok(Self {
            conn: connector.shared(),
            connector,
            keys: Keys::new(namespace),
            clock: Clock::default(),
            result_ttl_secs: result_ttl.as_secs().max(1),
            listing_max: enqueue::LISTING_MAX,
            known_queues: Arc::default(),
            prioritized: Arc::default(),
            two_step: Arc::default(),
            archive: false,
            payload: crate::payload::PayloadLimits::default(),
            replica_wait: None,
            shards: Arc::default(),
        })
    }

    /// The broker of a process, from `[redis]`, checked once ([`Broker::check_at_start`]): a
    /// misconfiguration ends the process at start with one line naming the cause.
    pub async fn open(settings: &crate::settings::RedisSettings, result_ttl: Duration) -> Result<Self, StartError> {
        let target = RedisTarget::from_settings(settings).map_err(|e| StartError(e.to_string()))?;
        let broker = Self::connect_to(target, &settings.namespace, result_ttl)
            .map_err(|e| StartError(e.to_string()))?
            .with_durability(settings.durability, settings.replica_timeout);
        broker.check_at_start().await.map_err(StartError)?;
        Ok(broker)
    }

    /// The start-up check of a process: `Err` (one line naming the cause) when Redis answers
    /// but not as configured (wrong password, untrusted certificate, unknown Sentinel master,
    /// a node not in cluster mode); `Ok` when it is fine or simply down (refused or
    /// unreachable), since the process then connects by itself when Redis returns.
    pub async fn check_at_start(&self) -> Result<(), String> {
        match self.connector.check().await? {
            true => {}
            false => tracing::warn!("redis is not reachable yet; starting anyway and connecting when it is"),
        }
        Ok(())
    }

    /// A broker with its own new connection to the same Redis and namespace (for a loop that
    /// must not share the process's connection, like the worker's heartbeat thread).
    pub fn reopen(&self) -> Result<Self, BrokerError> {
        let fresh = Self::connect_to(
            self.connector.target().clone(),
            self.keys.namespace(),
            Duration::from_secs(self.result_ttl_secs),
        )?;
        let mut fresh = fresh
            .with_listing_max(self.listing_max)
            .with_archive(self.archive)
            .with_payload(self.payload);
        fresh.replica_wait = self.replica_wait;
        Ok(fresh)
    }

    /// Under [`Durability::Replicated`], enqueues and stored outcomes are answered only once
    /// a replica has them (waiting at most `timeout`); see docs/design.md, "Durability".
    pub fn with_durability(mut self, durability: Durability, timeout: Duration) -> Self {
        self.replica_wait = (durability == Durability::Replicated).then_some(timeout);
        self
    }

    /// Under `replicated` durability, waits until one replica has every write this process
    /// sent to the node holding `key` ([`BrokerError::NotReplicated`] if none does in time).
    /// `key` is only named (built) under `replicated` durability: the default costs nothing.
    pub(crate) async fn replicated(&self, key: impl FnOnce() -> String) -> Result<(), BrokerError> {
        let Some(timeout) = self.replica_wait else {
            return Ok(());
        };
        match self.conn.clone().wait_for_replicas(&key(), 1, timeout).await? {
            0 => Err(BrokerError::NotReplicated(timeout)),
            _ => Ok(()),
        }
    }

    /// Hands every task ending over to the archive (`true`), or not (`false`, the default):
    /// the scripts that end tasks then get the queue's archive stream as their last key.
    pub fn with_archive(mut self, on: bool) -> Self {
        self.archive = on;
        self
    }

    /// Stores arguments and results above `payload`'s threshold compressed ([`crate::payload`]).
    pub fn with_payload(mut self, payload: crate::payload::PayloadLimits) -> Self {
        self.payload = payload;
        self
    }

    pub fn payload(&self) -> &crate::payload::PayloadLimits {
        &self.payload
    }

    pub fn archive_enabled(&self) -> bool {
        self.archive
    }

    /// The streams every script that ends tasks takes after its task hashes (lua/archive.lua):
    /// the queue's webhooks stream, then its archive stream when the archive is on.
    pub(crate) fn ending_streams(&self, queue: &QueueName) -> Vec<String> {
        let mut streams = vec![self.keys.webhooks(queue)];
        if self.archive {
            streams.push(self.keys.archive(queue));
        }
        streams
    }

    /// Keeps at most `max` entries in each queue's listing log (the oldest go first).
    pub fn with_listing_max(mut self, max: u64) -> Self {
        self.listing_max = max.max(1);
        self
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn result_ttl_secs(&self) -> u64 {
        self.result_ttl_secs
    }

    /// A connection from the shared multiplexed pool, for callers with their own commands.
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// A new connection without a reply timeout, for blocking commands (on a Cluster, they
    /// reach the node owning their key).
    pub async fn blocking_connection(&self) -> Result<RedisConnection, BrokerError> {
        Ok(self.connector.blocking().await?)
    }

    /// A connection to each master (one unless on a Cluster), for walks of the keyspace.
    pub async fn master_connections(&self) -> Result<Vec<RedisConnection>, BrokerError> {
        Ok(self.connector.masters().await?)
    }

    /// A pub/sub connection that hears every `PUBLISH` of the deployment.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, BrokerError> {
        Ok(self.connector.pubsub().await?)
    }

    /// Round trip to Redis; `Err` while it is unreachable.
    pub async fn ping(&self) -> Result<(), BrokerError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// The task's record, or `None` for an id that never existed or whose record expired.
    pub async fn get(&self, id: &TaskId) -> Result<Option<TaskRecord>, BrokerError> {
        let fields = self.task_hash(id).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(TaskRecord::from_hash(id.clone(), fields))
    }

    /// Every field of the task's hash (none when there is no record).
    async fn task_hash(&self, id: &TaskId) -> Result<HashMap<String, String>, BrokerError> {
        Ok(self.conn.clone().hgetall(self.keys.task(id)).await?)
    }

    /// Every queue ever used in this namespace.
    pub async fn queues(&self) -> Result<Vec<QueueName>, BrokerError> {
        let names: Vec<String> = self.conn.clone().smembers(self.keys.queues()).await?;
        Ok(names.iter().filter_map(|n| QueueName::parse(n).ok()).collect())
    }

    /// Adds the queue to the namespace's queue set once per process.
    pub(crate) async fn remember_queue(&self, queue: &QueueName) -> Result<(), BrokerError> {
        if self.known_queues.lock().expect("queue set lock").contains(queue) {
            return Ok(());
        }
        let _: i64 = self.conn.clone().sadd(self.keys.queues(), queue.as_str()).await?;
        self.known_queues.lock().expect("queue set lock").insert(queue.clone());
        Ok(())
    }
}
