//! Waiting without polling: a worker blocks on its queue until work arrives, and a caller
//! waits for a task to finish on the task's events (`events.rs`), never polling Redis in a loop.

use std::time::Duration;

use super::events::{TaskEvents, broadcast_recv};
use super::{Broker, BrokerError, Claim, Hold, RedisConnection};
use crate::id::{QueueName, TaskId};
use crate::record::TaskRecord;

/// A dedicated connection for blocking on one queue; blocking commands must not share the
/// multiplexed connection (they would hold up every other caller) nor time out after 500 ms.
/// A queue with priorities ([`Broker::uses_priorities`]) also has its bell waited on, on a
/// second connection; a queue held back by its concurrency cap is waited on through its
/// freed-slots list, on a third.
pub struct QueueWaiter {
    broker: Broker,
    queue: QueueName,
    conn: Option<RedisConnection>,
    bell: Option<RedisConnection>,
    slots: Option<RedisConnection>,
}

impl QueueWaiter {
    pub fn new(broker: &Broker, queue: &QueueName) -> Self {
        Self {
            broker: broker.clone(),
            queue: queue.clone(),
            conn: None,
            bell: None,
            slots: None,
        }
    }

    /// Waits, at most `timeout`, for what a claim that took nothing needs: work in an empty
    /// queue, a token or a slot under a limit, or (paused) just the time.
    pub async fn wait_after(&mut self, claim: &Claim, timeout: Duration) -> Result<(), BrokerError> {
        match claim {
            Claim::Held(hold) => self.wait_for_release(*hold, timeout).await,
            Claim::Paused => {
                tokio::time::sleep(timeout).await;
                Ok(())
            }
            Claim::Ids(_) => self.wait_for_work(timeout).await.map(drop),
        }
    }

    /// Waits, at most `timeout`, until a limit that held the queue's tasks back may let one
    /// go (limits.rs): the rate's next token (a timed sleep), or a slot freed under the
    /// concurrency cap (a block on the freed-slots list, which takes one wake-up: one waiting
    /// worker per freed slot). Never a polling loop.
    pub async fn wait_for_release(&mut self, hold: Hold, timeout: Duration) -> Result<(), BrokerError> {
        match hold {
            Hold::Rate { wait } => tokio::time::sleep(wait.clamp(Duration::from_millis(1), timeout)).await,
            Hold::Concurrency => {
                let freed = self.broker.keys().slots_freed(&self.queue);
                let mut c = match self.slots.take() {
                    Some(c) => c,
                    None => self.broker.blocking_connection().await?,
                };
                let _: Option<(String, String)> = redis::cmd("BLPOP")
                    .arg(&freed)
                    .arg(timeout.as_secs_f64())
                    .query_async(&mut c)
                    .await?;
                self.slots = Some(c);
            }
        }
        Ok(())
    }

    /// Blocks until the queue's pending list (or, for a queue with priorities, its bell) is
    /// non-empty or `timeout` passes, without taking anything: `BLMOVE list list RIGHT RIGHT`
    /// moves the last element onto itself, which leaves the list as it was. Returns `true`
    /// when there is work.
    pub async fn wait_for_work(&mut self, timeout: Duration) -> Result<bool, BrokerError> {
        let pending = self.broker.keys().pending(&self.queue);
        if !self.broker.uses_priorities(&self.queue).await? {
            return block_on(&self.broker, &mut self.conn, &pending, timeout).await;
        }
        let bell = self.broker.keys().priority_bell(&self.queue);
        tokio::select! {
            found = block_on(&self.broker, &mut self.conn, &pending, timeout) => found,
            found = block_on(&self.broker, &mut self.bell, &bell, timeout) => found,
        }
    }
}

/// `BLMOVE key key RIGHT RIGHT` on `conn` (opened when `None`). The connection is taken out
/// for the command and put back only when it answers: a wait dropped mid-command (a caller
/// waiting on several queues at once) drops its connection too, instead of leaving the next
/// command queued behind the blocked one.
async fn block_on(broker: &Broker, conn: &mut Option<RedisConnection>, key: &str, timeout: Duration) -> Result<bool, BrokerError> {
    let mut c = match conn.take() {
        Some(c) => c,
        None => broker.blocking_connection().await?,
    };
    let reply: Option<String> = redis::cmd("BLMOVE")
        .arg(key)
        .arg(key)
        .arg("RIGHT")
        .arg("RIGHT")
        .arg(timeout.as_secs_f64())
        .query_async(&mut c)
        .await?;
    *conn = Some(c);
    Ok(reply.is_some())
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
