//! The outbox relay: moves the rows that `celeriac_enqueue()` wrote inside committed
//! transactions to Redis, each with the row's id as its task id, then deletes them. Sending
//! goes through the library's one enqueue path (`Catalog::prepare`), so a row is checked like
//! any `POST /tasks`. The enqueue script refuses an id that exists, so a row sent by a relay
//! that died before deleting it is only deleted the next time: never enqueued twice. Woken by
//! `LISTEN celeriac_outbox` (a NOTIFY is delivered at commit), with a slow poll behind it for
//! a lost connection.

use std::time::Duration;

use celeriac::call::CallOptions;
use celeriac::catalog::{CallError, Catalog};
use celeriac::{Broker, BrokerError, TaskId};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use sqlx::types::Json;

/// The channel `celeriac_enqueue()` notifies.
pub const CHANNEL: &str = "celeriac_outbox";

/// A committed row of the outbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub task_id: String,
    pub task: String,
    pub args: Json<Value>,
    pub options: Json<Value>,
}

/// What became of a row sent to Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Stored and queued now.
    Queued,
    /// A task with this id exists already (sent before by a relay that did not delete it).
    AlreadyQueued,
    /// The row can never be a task (its error is kept on the row).
    Refused(String),
    /// Not now (its task type is not registered yet): tried again later.
    Later(String),
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    #[error("archive database: {0}")]
    Database(#[from] sqlx::Error),
}

pub struct Relay {
    broker: Broker,
    pool: PgPool,
    catalog: Catalog,
    /// The slow poll behind LISTEN.
    pub poll: Duration,
    pub batch: usize,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").finish_non_exhaustive()
    }
}

impl Relay {
    pub fn new(broker: Broker, pool: PgPool, catalog: Catalog) -> Self {
        Self {
            broker,
            pool,
            catalog,
            poll: Duration::from_secs(5),
            batch: 200,
        }
    }

    /// The oldest committed rows not refused yet.
    pub async fn take(&self) -> Result<Vec<OutboxRow>, RelayError> {
        Ok(
            sqlx::query_as("SELECT task_id, task, args, options FROM celeriac_outbox WHERE error IS NULL ORDER BY created_at LIMIT $1")
                .bind(self.batch as i64)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Enqueues the row's task under the row's id.
    pub async fn send(&self, row: &OutboxRow) -> Result<Sent, RelayError> {
        let Some(id) = TaskId::parse(&row.task_id) else {
            return Ok(Sent::Refused(format!("{:?} is not a task id", row.task_id)));
        };
        let mut call: CallOptions = match serde_json::from_value(row.options.0.clone()) {
            Ok(call) => call,
            Err(e) => return Ok(Sent::Refused(format!("options: {e}"))),
        };
        call.queue = Some(id.queue().to_string());
        let now = self.broker.clock().now_ms();
        let mut new = match self.catalog.prepare(&self.broker, &row.task, &row.args.0, &call, now).await {
            Ok(new) => new,
            Err(e @ CallError::UnknownTask { .. }) => return Ok(Sent::Later(e.to_string())),
            Err(e) => return Ok(Sent::Refused(e.to_string())),
        };
        new.id = id;
        let queue = new.id.queue().clone();
        match self.broker.enqueue(&queue, std::slice::from_ref(&new), 0, None).await {
            Ok(_) => Ok(Sent::Queued),
            Err(BrokerError::Duplicate(_)) => Ok(Sent::AlreadyQueued),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes rows that are in Redis now.
    pub async fn delete(&self, ids: &[String]) -> Result<(), RelayError> {
        sqlx::query("DELETE FROM celeriac_outbox WHERE task_id = ANY($1)")
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One pass: sends every waiting row and deletes those sent. Returns how many were sent.
    pub async fn step(&self) -> Result<usize, RelayError> {
        let rows = self.take().await?;
        let mut done = Vec::with_capacity(rows.len());
        for row in &rows {
            match self.send(row).await? {
                Sent::Queued | Sent::AlreadyQueued => done.push(row.task_id.clone()),
                Sent::Refused(why) => {
                    tracing::error!(task_id = %row.task_id, error = %why, "outbox row refused; it stays with its error");
                    sqlx::query("UPDATE celeriac_outbox SET error = $2 WHERE task_id = $1")
                        .bind(&row.task_id)
                        .bind(&why)
                        .execute(&self.pool)
                        .await?;
                }
                Sent::Later(why) => tracing::warn!(task_id = %row.task_id, error = %why, "outbox row waits"),
            }
        }
        self.delete(&done).await?;
        Ok(done.len())
    }

    /// Relays until `stop` completes: a pass at every NOTIFY, and every `poll` at the latest.
    pub async fn run(&self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: LISTEN failed; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "outbox: no listener connection; polling only");
                None
            }
        };
        loop {
            loop {
                match self.step().await {
                    Ok(n) if n >= self.batch => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox relay failed; trying again");
                        break;
                    }
                }
            }
            let woken = async {
                match listener.as_mut() {
                    Some(l) => {
                        if l.recv().await.is_err() {
                            tokio::time::sleep(self.poll).await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = woken => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }
}
