//! The Redis broker: typed calls over the Lua scripts in `lua/`, one script per atomic change
//! of a task's place (enqueue, claim, start, finish, requeue) so that a task is always in
//! exactly one place (docs/design.md, invariant 2), and reads of task records.

mod admin;
mod audit;
mod enqueue;
mod lease;
mod listing;
mod lost_reply;
mod metrics;
mod purge;
mod revoke;
mod schedules;
mod scripts;
mod wait;
mod workers;
mod workflow;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use admin::{MinuteCount, QueueOverview, THROUGHPUT_MINUTES};
pub use audit::AuditReport;
pub use enqueue::{EnqueueOutcome, Idempotency, NewTask};
pub use lease::{Ack, Claim, DEAD_LETTERS_MAX, DEAD_LETTERS_MAX_AGE_SECS, Delivery, Outcome, Started, Verdict, new_claim_token};
pub use listing::{ListCursor, ListFilter, TaskPage};
pub use metrics::QueueStats;
pub use revoke::{RetryOutcome, RevokeOutcome, control};
pub use schedules::{DeleteOutcome, FiredRun, PutOutcome, ScheduleEntry, ScheduleSource, ScheduleState};
pub(crate) use wait::LogFields;
pub use wait::{QueueWaiter, TaskEvent, TaskEvents, broadcast_recv};
pub use workers::WorkerInfo;
pub use workflow::{FailedMember, MemberRef, MemberStatus, WorkflowOutcome, WorkflowStarted, WorkflowStatus, parse_workflow_id};

use crate::clock::Clock;
use crate::id::{QueueName, TaskId};
use crate::keys::Keys;
use crate::record::TaskRecord;

/// What can go wrong talking to the broker. Only `Redis` is an outage; the others are answers.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Redis could not be reached or answered with an error. Never shown to HTTP clients.
    #[error("redis: {0}")]
    Redis(redis::RedisError),
    #[error("queue {queue} is full ({depth} pending)")]
    QueueFull { queue: QueueName, depth: u64 },
    #[error("a task with id {0} exists already")]
    Duplicate(TaskId),
    #[error("unexpected reply from a broker script: {0}")]
    Protocol(String),
    /// A task the store cannot hold as given (a library caller's bug; the gateway checks first).
    #[error("invalid task: {0}")]
    InvalidTask(String),
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

/// How long a single reply may take before the call fails (the connection reconnects itself).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take; short, so an outage answers 503 quickly.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A handle to the broker: cheap to clone, shared by every task of a process. Concurrent callers
/// share one multiplexed connection, so their commands are pipelined automatically.
#[derive(Clone)]
pub struct Broker {
    conn: ConnectionManager,
    client: redis::Client,
    keys: Keys,
    clock: Clock,
    result_ttl_secs: u64,
    /// Most entries each queue's listing log keeps ([`enqueue::LISTING_MAX`] unless set).
    listing_max: u64,
    /// Queues this process has already added to the namespace's queue set.
    known_queues: Arc<Mutex<HashSet<QueueName>>>,
    /// Whether the scripts that end tasks hand each ending over to the archive (its queue's
    /// archive stream, lua/archive.lua). Every process that ends tasks (workers, gateway)
    /// must agree, or endings recorded by one with it off never reach the archive.
    archive: bool,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("namespace", &self.keys.namespace()).finish()
    }
}

impl Broker {
    /// Prepares a connection; it is opened on first use and re-opened after an outage, so a
    /// process can start while Redis is down and recovers by itself when it returns.
    pub fn connect(url: &str, namespace: &str, result_ttl: Duration) -> Result<Self, BrokerError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self {
            conn,
            client,
            keys: Keys::new(namespace),
            clock: Clock::default(),
            result_ttl_secs: result_ttl.as_secs().max(1),
            listing_max: enqueue::LISTING_MAX,
            known_queues: Arc::default(),
            archive: false,
        })
    }

    /// Hands every task ending over to the archive (`true`), or not (`false`, the default):
    /// the scripts that end tasks then get the queue's archive stream as their last key.
    pub fn with_archive(mut self, on: bool) -> Self {
        self.archive = on;
        self
    }

    pub fn archive_enabled(&self) -> bool {
        self.archive
    }

    /// The queue's archive stream when the archive is on: the last key of every script that
    /// ends tasks (lua/archive.lua).
    pub(crate) fn archive_key(&self, queue: &QueueName) -> Option<String> {
        self.archive.then(|| self.keys.archive(queue))
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
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Round trip to Redis; `Err` while it is unreachable.
    pub async fn ping(&self) -> Result<(), BrokerError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// The task's record, or `None` for an id that never existed or whose record expired.
    pub async fn get(&self, id: &TaskId) -> Result<Option<TaskRecord>, BrokerError> {
        let fields: HashMap<String, String> = self.conn.clone().hgetall(self.keys.task(id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(TaskRecord::from_hash(id.clone(), fields))
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
