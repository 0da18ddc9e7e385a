//! Completion webhooks as Redis holds them: the endings of tasks that named a `callback_url`,
//! handed over to the queue's webhooks stream by the script that recorded each ending
//! (lua/archive.lua), and taken from there by the workers' deliverers (consumer group
//! [`WEBHOOK_GROUP`]). A delivery that failed leaves its entry pending; the stream's own
//! bookkeeping (how long an entry has been idle, how many times it was read) decides when it
//! is due again, so a retry survives any worker's death and two deliverers never take the
//! same attempt. The attempts are logged in the record (lua/webhook_done.lua).

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;

use super::streams::{self, Entry};
use super::{Broker, BrokerError, scripts};
use crate::id::{QueueName, TaskId};
use crate::record::WebhookDelivery;
use crate::state::TaskState;

/// The consumer group of the webhook deliverers.
pub const WEBHOOK_GROUP: &str = "webhooks";

/// A task's ending whose webhook is to be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEnding {
    /// The entry on the queue's webhooks stream.
    pub entry: String,
    pub task_id: TaskId,
    /// The final state it reached.
    pub state: TaskState,
    /// 1 for the first attempt, 2 for the first retry...
    pub attempt: u32,
}

impl WebhookEnding {
    fn from_entry(queue: &QueueName, entry: Entry, attempt: u32) -> Result<Self, BrokerError> {
        let bad = || BrokerError::Protocol(format!("webhook entry {} on queue {queue}: {:?}", entry.id, entry.fields));
        let task_id = entry.get("id").and_then(|id| TaskId::parse(id)).ok_or_else(bad)?;
        let state = entry.get("s").and_then(|s| TaskState::parse(s)).ok_or_else(bad)?;
        Ok(Self {
            entry: entry.id,
            task_id,
            state,
            attempt,
        })
    }
}

impl Broker {
    /// New endings on `queue`'s webhooks stream, up to `count`, now read by `consumer` (their
    /// first attempt).
    pub async fn webhook_endings(&self, queue: &QueueName, consumer: &str, count: usize) -> Result<Vec<WebhookEnding>, BrokerError> {
        let stream = self.keys.webhooks(queue);
        let mut conn = self.conn.clone();
        let read = match streams::read(&mut conn, &stream, WEBHOOK_GROUP, consumer, ">", count).await {
            Err(e) if e.code() == Some("NOGROUP") => {
                streams::ensure_group(&mut conn, &stream, WEBHOOK_GROUP).await?;
                streams::read(&mut conn, &stream, WEBHOOK_GROUP, consumer, ">", count).await?
            }
            other => other?,
        };
        read.into_iter().map(|e| WebhookEnding::from_entry(queue, e, 1)).collect()
    }

    /// Endings on `queue` whose last attempt failed (or whose deliverer died) and whose wait
    /// is over, taken over by `consumer`, up to `count`: `retry_after(n)` is how long an ending
    /// read `n` times waits after its last read.
    pub async fn webhook_retries_due(
        &self,
        queue: &QueueName,
        consumer: &str,
        retry_after: impl Fn(u32) -> Duration,
        count: usize,
    ) -> Result<Vec<WebhookEnding>, BrokerError> {
        let stream = self.keys.webhooks(queue);
        let mut conn = self.conn.clone();
        let shortest = retry_after(1).as_millis() as u64;
        let pending = match streams::pending_idle(&mut conn, &stream, WEBHOOK_GROUP, shortest, count).await {
            Err(e) if e.code() == Some("NOGROUP") => return Ok(Vec::new()),
            other => other?,
        };
        let mut due = Vec::new();
        for p in pending {
            let wait = retry_after(p.reads).as_millis() as u64;
            if p.idle_ms < wait {
                continue;
            }
            // Taken only if still idle that long: of two deliverers, one gets it.
            if let Some(entry) = streams::claim(&mut conn, &stream, WEBHOOK_GROUP, consumer, wait, &p.id).await? {
                due.push(WebhookEnding::from_entry(queue, entry, p.reads + 1)?);
            }
        }
        Ok(due)
    }

    /// Logs an attempt in the task's record and, when `done` (delivered, or given up), removes
    /// the ending from the stream, in one step.
    pub async fn webhook_attempted(&self, ending: &WebhookEnding, attempt: &WebhookDelivery, done: bool) -> Result<(), BrokerError> {
        let line = serde_json::to_string(attempt).map_err(|e| BrokerError::Protocol(e.to_string()))?;
        let mut call = scripts::WEBHOOK_DONE.prepare_invoke();
        call.key(self.keys.task(&ending.task_id))
            .key(self.keys.webhooks(ending.task_id.queue()))
            .arg(WEBHOOK_GROUP)
            .arg(&ending.entry)
            .arg(line)
            .arg(if done { "1" } else { "0" });
        let _: i64 = call.invoke_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// Subscribes `queue` to completion webhooks: its tasks enqueued from now on without a
    /// `callback_url` of their own get `url` (the catalogue fills it in,
    /// [`crate::catalog::Catalog`]). Replaces the queue's earlier subscription.
    pub async fn subscribe_webhook(&self, queue: &QueueName, url: &str) -> Result<(), BrokerError> {
        let () = self
            .conn
            .clone()
            .hset(self.keys.webhook_subscriptions(), queue.as_str(), url)
            .await?;
        Ok(())
    }

    /// Ends `queue`'s subscription; whether it had one.
    pub async fn unsubscribe_webhook(&self, queue: &QueueName) -> Result<bool, BrokerError> {
        let removed: i64 = self.conn.clone().hdel(self.keys.webhook_subscriptions(), queue.as_str()).await?;
        Ok(removed == 1)
    }

    /// Every queue's subscription: queue name -> URL.
    pub async fn webhook_subscriptions(&self) -> Result<HashMap<String, String>, BrokerError> {
        Ok(self.conn.clone().hgetall(self.keys.webhook_subscriptions()).await?)
    }

    /// Endings on `queue` not delivered yet (new, or waiting for a retry).
    pub async fn webhook_backlog(&self, queue: &QueueName) -> Result<u64, BrokerError> {
        Ok(redis::cmd("XLEN")
            .arg(self.keys.webhooks(queue))
            .query_async(&mut self.conn.clone())
            .await?)
    }
}
