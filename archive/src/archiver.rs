//! The archiver: takes the endings handed over to each queue's archive stream, writes them to
//! `celeriac_tasks` in batches (one multi-row upsert per batch: exactly one row per task id,
//! however often an entry is read again), and acknowledges them only after the commit. An
//! archiver killed between the two leaves its entries pending; it takes them again itself
//! when it comes back, or another archiver claims them once they have been idle for
//! `claim_idle`. Several archivers may run at once.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use celeriac::{Broker, BrokerError, QueueName};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::row::ArchivedTask;
use crate::settings::ArchiveSettings;
use crate::stream::{self, Entry};

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    #[error("archive database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A batch taken from one queue's stream and not yet acknowledged.
#[derive(Debug)]
pub struct Batch {
    pub queue: QueueName,
    pub entries: Vec<Entry>,
}

pub struct Archiver {
    broker: Broker,
    pool: PgPool,
    settings: ArchiveSettings,
    consumer: String,
    /// Queues whose stream has the group already (created once per archiver).
    grouped: Mutex<HashSet<QueueName>>,
}

impl std::fmt::Debug for Archiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archiver").field("consumer", &self.consumer).finish()
    }
}

impl Archiver {
    /// An archiver named `consumer` in the group (a name of its own per process: a restarted
    /// process that keeps its name takes its own pending entries back at once).
    pub fn new(broker: Broker, pool: PgPool, settings: ArchiveSettings, consumer: impl Into<String>) -> Self {
        Self {
            broker,
            pool,
            settings,
            consumer: consumer.into(),
            grouped: Mutex::default(),
        }
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Archives until `stop` completes; an outage of Redis or PostgreSQL is logged and the
    /// batch tried again (nothing acknowledged is lost, nothing unacknowledged is dropped).
    pub async fn run(&self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut failures = 0u32;
        loop {
            let pause = match self.step().await {
                Ok(0) => {
                    failures = 0;
                    self.settings.poll
                }
                Ok(_) => {
                    failures = 0;
                    continue;
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, consumer = %self.consumer, "archiving failed; trying again");
                    self.settings.poll * failures.min(10)
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass over every queue: takes a batch from each, stores it and acknowledges it.
    /// Returns how many endings were archived.
    pub async fn step(&self) -> Result<usize, ArchiveError> {
        let mut archived = 0;
        for queue in self.broker.queues().await? {
            let batch = self.take(&queue).await?;
            if batch.entries.is_empty() {
                continue;
            }
            archived += self.store(&batch).await?;
            self.ack(&batch).await?;
        }
        Ok(archived)
    }

    /// Takes a batch of the queue's endings: first those this consumer read before and did
    /// not acknowledge, then those another consumer left idle too long, then new ones.
    pub async fn take(&self, queue: &QueueName) -> Result<Batch, ArchiveError> {
        let mut conn = self.broker.connection();
        let key = self.broker.keys().archive(queue);
        if !self.grouped.lock().expect("group set").contains(queue) {
            stream::ensure_group(&mut conn, &key).await?;
            self.grouped.lock().expect("group set").insert(queue.clone());
        }
        let n = self.settings.batch;
        let mut entries = stream::read(&mut conn, &key, &self.consumer, "0", n).await?;
        if entries.is_empty() {
            let idle = self.settings.claim_idle.as_millis() as u64;
            entries = stream::claim_idle(&mut conn, &key, &self.consumer, idle, n).await?;
        }
        if entries.is_empty() {
            entries = stream::read(&mut conn, &key, &self.consumer, ">", n).await?;
        }
        Ok(Batch {
            queue: queue.clone(),
            entries,
        })
    }

    /// Writes the batch's tasks in one upsert (committed when it returns). An entry that
    /// cannot be a row (not a terminal record) is logged and skipped: it would never become
    /// one. Returns the number of rows written.
    pub async fn store(&self, batch: &Batch) -> Result<usize, ArchiveError> {
        // One row per task id (a statement may not update a row twice): the latest entry.
        let mut latest: HashMap<String, ArchivedTask> = HashMap::with_capacity(batch.entries.len());
        for entry in &batch.entries {
            match ArchivedTask::from_entry(entry.fields.clone(), entry.at_ms()) {
                Ok(row) => {
                    latest.insert(row.task_id.clone(), row);
                }
                Err(e) => tracing::warn!(queue = %batch.queue, entry = %entry.id, "archive entry skipped: {e}"),
            }
        }
        if latest.is_empty() {
            return Ok(0);
        }
        let rows: Vec<&ArchivedTask> = latest.values().collect();
        match upsert(&self.pool, &rows).await {
            Err(e) if is_bad_row(&e) => {}
            other => return other.map(|()| rows.len()).map_err(Into::into),
        }
        // A row PostgreSQL refuses (jsonb cannot hold "\u0000", for instance) must not hold
        // back the batch forever: the rows go one by one, and the refused ones are logged.
        let mut stored = 0;
        for row in rows {
            match upsert(&self.pool, &[row]).await {
                Ok(()) => stored += 1,
                Err(e) if is_bad_row(&e) => {
                    tracing::error!(task_id = %row.task_id, error = %e, "the archive refused this task; it is not archived")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(stored)
    }

    /// Acknowledges the batch's entries and deletes them from the stream.
    pub async fn ack(&self, batch: &Batch) -> Result<(), ArchiveError> {
        let ids: Vec<&str> = batch.entries.iter().map(|e| e.id.as_str()).collect();
        let key = self.broker.keys().archive(&batch.queue);
        stream::ack(&mut self.broker.connection(), &key, &ids).await?;
        Ok(())
    }
}

/// Whether PostgreSQL refused the data itself (SQLSTATE class 22, data exception, or 23,
/// integrity constraint), not the connection: trying again would fail the same way.
fn is_bad_row(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
}

/// One multi-row `INSERT ... ON CONFLICT (task_id) DO UPDATE`: a task archived again (an
/// entry read twice, or a task run again after it ended) keeps its latest ending.
async fn upsert(pool: &PgPool, rows: &[&ArchivedTask]) -> Result<(), sqlx::Error> {
    let mut q = QueryBuilder::<Postgres>::new(
        "INSERT INTO celeriac_tasks (task_id, task, queue, state, args, result, error, attempts, deliveries, \
         created_at, started_at, finished_at, queue_wait_ms, run_time_ms, worker, workflow_id, trace_id, tags, \
         options, max_retries, workflow_node, eta, expires_at) ",
    );
    q.push_values(rows, |mut b, r| {
        b.push_bind(&r.task_id)
            .push_bind(&r.task)
            .push_bind(&r.queue)
            .push_bind(&r.state)
            .push_bind(Json(&r.args))
            .push_bind(r.result.as_ref().map(Json))
            .push_bind(r.error.as_ref().map(Json))
            .push_bind(r.attempts)
            .push_bind(r.deliveries)
            .push_bind(r.created_at)
            .push_bind(r.started_at)
            .push_bind(r.finished_at)
            .push_bind(r.queue_wait_ms)
            .push_bind(r.run_time_ms)
            .push_bind(&r.worker)
            .push_bind(&r.workflow_id)
            .push_bind(&r.trace_id)
            .push_bind(Json(&r.tags))
            .push_bind(Json(&r.options))
            .push_bind(r.max_retries)
            .push_bind(r.workflow_node)
            .push_bind(r.eta)
            .push_bind(r.expires_at);
    });
    q.push(
        " ON CONFLICT (task_id) DO UPDATE SET task = excluded.task, queue = excluded.queue, state = excluded.state, \
         args = excluded.args, result = excluded.result, error = excluded.error, attempts = excluded.attempts, \
         deliveries = excluded.deliveries, created_at = excluded.created_at, started_at = excluded.started_at, \
         finished_at = excluded.finished_at, queue_wait_ms = excluded.queue_wait_ms, run_time_ms = excluded.run_time_ms, \
         worker = excluded.worker, workflow_id = excluded.workflow_id, trace_id = excluded.trace_id, tags = excluded.tags, \
         options = excluded.options, max_retries = excluded.max_retries, workflow_node = excluded.workflow_node, \
         eta = excluded.eta, expires_at = excluded.expires_at, \
         archived_at = now() WHERE celeriac_tasks.finished_at <= excluded.finished_at",
    );
    q.build().execute(pool).await?;
    Ok(())
}
