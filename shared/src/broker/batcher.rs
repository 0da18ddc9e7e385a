//! Group commit for single-task enqueues: concurrent calls for one queue share one call of
//! the enqueue script.
//!
//! A gateway stores each request's task as it comes, and under load most of a one-task call's
//! Redis time is the call itself (its keys and arguments, the existence check, the listing
//! and stats writes), which a batch pays once. An [`EnqueueBatcher`] keeps one loop per queue:
//! while its call is in flight, the next calls wait in the queue's channel, and the loop's
//! next call takes all of them (up to [`MAX_BATCH`]). There is no timer: a call to an idle
//! queue is sent at once, waiting only for the hand-over to the loop. A loop that gets no call
//! for [`IDLE`] ends (a later call starts another), so callers naming ever new queues leave
//! nothing behind.
//!
//! Each call gets the answer it would have had alone. The script is all or nothing, so a
//! batch it refuses (the queue full, a task it cannot hold) wrote nothing, and each of its
//! tasks is then enqueued alone: a queue bounded by `max_pending` takes exactly up to its
//! bound. Any other failure (Redis unreachable, or under `replicated` durability a batch no
//! replica acknowledged in time) is every call's answer, as it would have been each one's:
//! such a batch may be stored, and storing its tasks again would answer "stored" for tasks
//! whose write is not confirmed. Only plain tasks are batched ([`EnqueueBatcher::takes`]):
//! those whose only possible answer is "stored" or an error. A task with an
//! `Idempotency-Key`, a unique lock, a debounce or a workflow link, or with a derived id, goes
//! to [`Broker::enqueue`] directly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::debounce::debounce_key;
use super::enqueue::stored;
use super::unique::unique_key;
use super::{Broker, BrokerError, NewTask};
use crate::id::{QueueName, made_ms_of};

/// Most tasks in one batched call.
const MAX_BATCH: usize = 256;

/// Calls a queue's loop has not taken yet, at most; a call beyond waits for room.
const WAITING_MAX: usize = 4 * MAX_BATCH;

/// How long a queue's loop waits for a call before it ends.
pub const IDLE: Duration = Duration::from_secs(30);

/// The channel of each queue's loop.
type LoopMap = Mutex<HashMap<QueueName, mpsc::Sender<Waiting>>>;

/// Stores plain tasks, batching the concurrent calls for each queue (see the module).
#[derive(Clone)]
pub struct EnqueueBatcher {
    broker: Broker,
    loops: Arc<LoopMap>,
    idle: Duration,
}

/// A call waiting for its queue's loop.
struct Waiting {
    task: NewTask,
    max_pending: u64,
    answer: oneshot::Sender<Result<(), BrokerError>>,
}

impl EnqueueBatcher {
    pub fn new(broker: Broker) -> Self {
        Self {
            broker,
            loops: Arc::default(),
            idle: IDLE,
        }
    }

    /// The same with its loops ending after `idle` without a call instead of `IDLE` (30 s).
    pub fn with_idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// How many queues have a loop now.
    pub fn running_loops(&self) -> usize {
        lock(&self.loops).len()
    }

    /// Whether `task` may be batched: stored or refused, with no other answer (no unique
    /// lock, debounce or workflow link), and a fresh id (a UUID v7, which no other call
    /// holds). The caller sends a call with an `Idempotency-Key` to [`Broker::enqueue`] too.
    pub fn takes(task: &NewTask) -> bool {
        // The same tests [`Broker::enqueue`] routes by: a debounce, a unique lock, a workflow.
        debounce_key(task).is_none()
            && unique_key(&task.name, &task.args, &task.options).is_none()
            && task.workflow.is_none()
            && made_ms_of(task.id.suffix()).is_some()
    }

    /// Stores `task` on its queue, as [`Broker::enqueue`] would with this task alone and no
    /// idempotency: `max_pending` > 0 refuses it with [`BrokerError::QueueFull`] when the queue
    /// is that long. Only for a task [`EnqueueBatcher::takes`].
    pub async fn enqueue(&self, task: NewTask, max_pending: u64) -> Result<(), BrokerError> {
        debug_assert!(Self::takes(&task));
        let queue = task.id.queue().clone();
        let (answer, answered) = oneshot::channel();
        let waiting = Waiting { task, max_pending, answer };
        // The rare paths' futures are boxed: inline, they would size every request's future
        // (a whole script call's for the one alone), which is copied at each move (and the
        // gateway's handlers are boxed by axum): several KB a request for nothing.
        let sender = self.queue_loop(&queue);
        let ended = match sender.try_send(waiting) {
            Ok(()) => None,
            // A full channel: wait for room, as a plain send would.
            Err(mpsc::error::TrySendError::Full(waiting)) => {
                let send = Box::pin(sender.send(waiting));
                send.await.err().map(|e| e.0)
            }
            Err(mpsc::error::TrySendError::Closed(waiting)) => Some(waiting),
        };
        let Some(waiting) = ended else {
            return answered.await.unwrap_or_else(|_| Err(lost_loop(&queue)));
        };
        // The loop ended (idle, or its runtime is stopping): alone, then.
        let alone = Box::pin(self.broker.enqueue_plain(&queue, &waiting.task, waiting.max_pending));
        alone.await
    }

    /// The channel of `queue`'s loop, which is started at the queue's first call.
    fn queue_loop(&self, queue: &QueueName) -> mpsc::Sender<Waiting> {
        let mut loops = lock(&self.loops);
        if let Some(sender) = loops.get(queue).filter(|s| !s.is_closed()) {
            return sender.clone();
        }
        let (sender, waiting) = mpsc::channel(WAITING_MAX);
        let queue_loop = QueueLoop {
            broker: self.broker.clone(),
            queue: queue.clone(),
            loops: Arc::downgrade(&self.loops),
            idle: self.idle,
        };
        tokio::spawn(queue_loop.run(waiting));
        loops.insert(queue.clone(), sender.clone());
        sender
    }
}

fn lock(loops: &LoopMap) -> std::sync::MutexGuard<'_, HashMap<QueueName, mpsc::Sender<Waiting>>> {
    loops.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A queue's loop: takes every call waiting (up to [`MAX_BATCH`]) and stores them, until no
/// sender is left or no call came for `idle`.
struct QueueLoop {
    broker: Broker,
    queue: QueueName,
    /// Where its channel is listed, to take it out when it ends (weak: the batcher's end
    /// ends the loops).
    loops: std::sync::Weak<LoopMap>,
    idle: Duration,
}

impl QueueLoop {
    async fn run(self, mut waiting: mpsc::Receiver<Waiting>) {
        let mut batch = Vec::new();
        loop {
            match tokio::time::timeout(self.idle, waiting.recv_many(&mut batch, MAX_BATCH)).await {
                Ok(0) => return,
                Ok(_) => store(&self.broker, &self.queue, std::mem::take(&mut batch)).await,
                Err(_idle) => break,
            }
        }
        // Idle: no call gets in any more (a caller whose send is refused enqueues alone), the
        // channel leaves the list, and the calls that came meanwhile are stored.
        waiting.close();
        if let Some(loops) = self.loops.upgrade() {
            lock(&loops).retain(|_, sender| !sender.is_closed());
        }
        while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
            store(&self.broker, &self.queue, std::mem::take(&mut batch)).await;
        }
    }
}

/// Stores one batch in one call; if the script refuses it, each task alone.
async fn store(broker: &Broker, queue: &QueueName, batch: Vec<Waiting>) {
    let max_pending = batch[0].max_pending;
    let (tasks, calls): (Vec<NewTask>, Vec<_>) = batch.into_iter().map(|w| (w.task, (w.max_pending, w.answer))).unzip();
    if tasks.len() > 1 && calls.iter().all(|(max, _)| *max == max_pending) {
        match broker.enqueue(queue, &tasks, max_pending, None).await.and_then(stored) {
            Err(refused) if wrote_nothing(&refused) => {}
            answer => {
                for (_, call) in calls {
                    let _ = call.send(answer.clone());
                }
                return;
            }
        }
    }
    let alone = tasks.iter().zip(calls).map(|(task, (max_pending, call))| async move {
        let _ = call.send(broker.enqueue_plain(queue, task, max_pending).await);
    });
    futures::future::join_all(alone).await;
}

/// Whether the enqueue script refused the batch before writing anything, for a reason that
/// may concern only some of its tasks.
fn wrote_nothing(e: &BrokerError) -> bool {
    matches!(
        e,
        BrokerError::QueueFull { .. } | BrokerError::Duplicate(_) | BrokerError::InvalidTask(_)
    )
}

fn lost_loop(queue: &QueueName) -> BrokerError {
    BrokerError::Protocol(format!("the enqueue loop of queue {queue} stopped before answering"))
}
