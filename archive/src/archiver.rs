//! The archiver: takes the endings handed over to each queue's archive stream, writes them to
//! `celeriac_tasks` in batches (one multi-row upsert per batch: exactly one row per task id,
//! however often an entry is read again), and acknowledges them only after the commit. An
//! entry holds the endings of one script call (one to a few hundred: a worker finishes its
//! tasks in batches), so a batch is sized in endings: entries are taken until it holds
//! `batch` of them, and the entries read beyond stay this archiver's, taken first next time. An
//! archiver killed between the two leaves its entries pending; it takes them again itself
//! when it comes back, or another archiver claims them once they have been idle for
//! `claim_idle`. Several archivers may run at once.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use celeriac::{Broker, BrokerError, QueueName};
use sqlx::PgPool;

use crate::row::ArchivedTask;
use crate::settings::ArchiveSettings;
use crate::stream;
use crate::upsert::upsert;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    #[error("archive database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A batch taken from one queue's stream and not yet acknowledged: its entries' stream ids
/// (to acknowledge) and the rows decoded from them (to store), decoded once when taken.
/// An entry is taken whole: a batch may hold a little over `batch` endings.
#[derive(Debug)]
pub struct Batch {
    pub queue: QueueName,
    /// Every entry taken, including those that could not be a row (acknowledged all the same).
    pub ids: Vec<String>,
    /// One row per task id: a task's latest entry in the batch (a statement may not update a
    /// row twice).
    pub rows: Vec<ArchivedTask>,
}

pub struct Archiver {
    broker: Broker,
    pool: PgPool,
    settings: ArchiveSettings,
    consumer: String,
    /// Queues whose stream has the group already (created once per archiver).
    grouped: Mutex<HashSet<QueueName>>,
    /// Endings per entry in the last batch taken: how many entries to read for the next one.
    endings_per_entry: AtomicUsize,
}

/// What `Archiver::endings_per_entry` starts from: the first read of a stream of one-task
/// entries takes `batch / 16` of them, and one of full entries (256 tasks, lua/archive.lua's
/// HAND_OVER_MAX) reads 16 times `batch` endings at most.
const FIRST_ENDINGS_PER_ENTRY: usize = 16;

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
            endings_per_entry: AtomicUsize::new(FIRST_ENDINGS_PER_ENTRY),
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
            if batch.ids.is_empty() {
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
        let n = self.settings.batch.div_ceil(self.endings_per_entry.load(Ordering::Relaxed));
        let mut entries = stream::read(&mut conn, &key, &self.consumer, "0", n).await?;
        if entries.is_empty() {
            let idle = self.settings.claim_idle.as_millis() as u64;
            entries = stream::claim_idle(&mut conn, &key, &self.consumer, idle, n).await?;
        }
        if entries.is_empty() {
            entries = stream::read(&mut conn, &key, &self.consumer, ">", n).await?;
        }
        let mut taken = Vec::with_capacity(entries.len());
        let mut endings = 0;
        for entry in entries {
            if endings >= self.settings.batch {
                break;
            }
            let at_ms = entry.at_ms();
            let mut rows = Vec::new();
            for handover in stream::handovers(entry.fields) {
                let row = stream::record_of(&mut conn, &key, handover)
                    .await?
                    .and_then(|(id, fields)| ArchivedTask::from_entry(&id, fields, at_ms));
                rows.push(row);
            }
            endings += rows.len();
            taken.push((entry.id, rows));
        }
        if !taken.is_empty() {
            self.endings_per_entry.store((endings / taken.len()).max(1), Ordering::Relaxed);
        }
        Ok(Batch::decode(queue.clone(), taken))
    }

    /// Writes the batch's rows in one upsert (committed when it returns). Returns the number
    /// of rows written.
    pub async fn store(&self, batch: &Batch) -> Result<usize, ArchiveError> {
        if batch.rows.is_empty() {
            return Ok(0);
        }
        match upsert(&self.pool, &batch.rows).await {
            Err(e) if is_bad_row(&e) => {}
            other => return other.map(|()| batch.rows.len()).map_err(Into::into),
        }
        // A row PostgreSQL refuses (jsonb cannot hold "\u0000", for instance) must not hold
        // back the batch forever: the rows go one by one, and the refused ones are logged.
        let mut stored = 0;
        for row in &batch.rows {
            match upsert(&self.pool, std::slice::from_ref(row)).await {
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
        let ids: Vec<&str> = batch.ids.iter().map(String::as_str).collect();
        let key = self.broker.keys().archive(&batch.queue);
        stream::ack(&mut self.broker.connection(), &key, &ids).await?;
        Ok(())
    }
}

impl Batch {
    /// The batch of these entries (each entry's stream id and its rows, or why a task it
    /// hands over has none). A task that cannot be a row (not a terminal record) is logged and
    /// skipped: it would never become one.
    fn decode(queue: QueueName, entries: Vec<(String, Vec<Result<ArchivedTask, String>>)>) -> Self {
        let mut ids = Vec::with_capacity(entries.len());
        let mut latest: HashMap<String, ArchivedTask> = HashMap::new();
        for (id, rows) in entries {
            for row in rows {
                match row {
                    Ok(row) => {
                        latest.insert(row.task_id.clone(), row);
                    }
                    Err(e) => tracing::warn!(queue = %queue, entry = %id, "archive entry skipped: {e}"),
                }
            }
            ids.push(id);
        }
        Self {
            queue,
            ids,
            rows: latest.into_values().collect(),
        }
    }
}

/// Whether PostgreSQL refused the data itself (SQLSTATE class 22, data exception, or 23,
/// integrity constraint), not the connection: trying again would fail the same way.
fn is_bad_row(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
}
