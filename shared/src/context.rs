//! What a running task can see and do: its id and attempt, a cancellation token (fired by a
//! soft time limit, a revoke or a shutdown), and progress reports that reach
//! `GET /tasks/{id}` at once.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, BrokerError};
use crate::id::TaskId;
use crate::record::Progress;

/// Handed to every run of a task. Cheap to clone.
#[derive(Clone)]
pub struct TaskContext {
    inner: Arc<Inner>,
}

struct Inner {
    id: TaskId,
    attempt: u32,
    cancel: CancellationToken,
    lease: Option<Lease>,
}

/// The run's hold on the task, which fences its progress writes.
struct Lease {
    broker: Broker,
    worker: String,
    delivery: u32,
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("id", &self.inner.id)
            .field("attempt", &self.inner.attempt)
            .finish()
    }
}

impl TaskContext {
    /// The context of a leased run, as the worker runtime builds it.
    pub fn leased(id: TaskId, attempt: u32, cancel: CancellationToken, broker: Broker, worker: String, delivery: u32) -> Self {
        let lease = Some(Lease { broker, worker, delivery });
        Self {
            inner: Arc::new(Inner {
                id,
                attempt,
                cancel,
                lease,
            }),
        }
    }

    /// A context with no broker behind it, for calling a task directly (unit tests):
    /// progress reports are accepted and dropped.
    pub fn detached(id: TaskId) -> Self {
        Self {
            inner: Arc::new(Inner {
                id,
                attempt: 1,
                cancel: CancellationToken::new(),
                lease: None,
            }),
        }
    }

    pub fn task_id(&self) -> &TaskId {
        &self.inner.id
    }

    /// 1 for the first attempt, 2 for the first retry, ...
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// Fires when the task should stop: soft time limit, revoke, or shutdown.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.inner.cancel
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Reports progress. A run that lost its lease is not allowed to write (`Ok(false)`).
    pub async fn progress(&self, current: u64, total: u64, message: Option<&str>) -> Result<bool, BrokerError> {
        let Some(lease) = &self.inner.lease else { return Ok(true) };
        let progress = Progress {
            current,
            total,
            message: message.map(str::to_owned),
        };
        lease
            .broker
            .report_progress(&self.inner.id, &lease.worker, lease.delivery, &progress)
            .await
    }
}
