//! Waiting without polling: a worker blocks on its queue until work arrives, and a caller
//! waits for a task to finish on the task's events (`events.rs`), never polling Redis in a loop.

use std::time::Duration;

use super::events::{TaskEvents, broadcast_recv};
use super::{Broker, BrokerError, RedisConnection};
use crate::id::{QueueName, TaskId};
use crate::record::TaskRecord;

/// A dedicated connection for blocking on one queue; blocking commands must not share the
/// multiplexed connection (they would hold up every other caller) nor time out after 500 ms.
pub struct QueueWaiter {
    broker: Broker,
    queue: QueueName,
    conn: Option<RedisConnection>,
}

impl QueueWaiter {
    pub fn new(broker: &Broker, queue: &QueueName) -> Self {
        Self {
            broker: broker.clone(),
            queue: queue.clone(),
            conn: None,
        }
    }

    /// Blocks until the queue's pending list is non-empty or `timeout` passes, without taking
    /// anything: `BLMOVE list list RIGHT RIGHT` moves the last id onto itself, which leaves the
    /// list as it was. Returns `true` when there is work.
    pub async fn wait_for_work(&mut self, timeout: Duration) -> Result<bool, BrokerError> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.broker.blocking_connection().await?),
        };
        let pending = self.broker.keys().pending(&self.queue);
        let reply: Result<Option<String>, _> = redis::cmd("BLMOVE")
            .arg(&pending)
            .arg(&pending)
            .arg("RIGHT")
            .arg("RIGHT")
            .arg(timeout.as_secs_f64())
            .query_async(conn)
            .await;
        match reply {
            Ok(found) => Ok(found.is_some()),
            Err(e) => {
                self.conn = None;
                Err(e.into())
            }
        }
    }
}

impl Broker {
    /// The task's record once it is terminal, or as it is when `timeout` runs out. Wakes on
    /// the task's events; never polls Redis in a loop.
    pub async fn wait_for_terminal(&self, events: &TaskEvents, id: &TaskId, timeout: Duration) -> Result<Option<TaskRecord>, BrokerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let wanted = id.to_string();
        let mut rx = events.subscribe();
        loop {
            let record = self.get(id).await?;
            match &record {
                Some(r) if !r.state.is_terminal() && tokio::time::Instant::now() < deadline => {}
                _ => return Ok(record),
            }
            tokio::select! {
                _ = broadcast_recv(&mut rx, &wanted) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}
