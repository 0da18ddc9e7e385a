//! What a running task can see and do: its id and attempt, a cancellation token (fired by a
//! soft time limit, a revoke or a shutdown), progress reports that reach `GET /tasks/{id}` at
//! once, and the W3C trace context the run continues (to pass on to the calls it makes).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, BrokerError};
use crate::id::TaskId;
use crate::record::Progress;
use crate::trace::TraceParent;

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
    /// The caller's trace id with this run's own span id.
    trace: Option<TraceParent>,
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
    /// The context of a leased run, as the worker runtime builds it. `trace` is the run's own
    /// trace context (see [`TraceParent::child`]).
    pub fn leased(
        id: TaskId,
        attempt: u32,
        cancel: CancellationToken,
        broker: Broker,
        worker: String,
        delivery: u32,
        trace: Option<TraceParent>,
    ) -> Self {
        let lease = Some(Lease { broker, worker, delivery });
        Self {
            inner: Arc::new(Inner {
                id,
                attempt,
                cancel,
                lease,
                trace,
            }),
        }
    }

    /// This run as a run token names it (without a deadline), for code outside the process
    /// that reports on it (a remote task's endpoint); `None` for a detached context.
    pub fn run_token(&self) -> Option<crate::run_token::RunToken> {
        self.inner.lease.as_ref().map(|lease| crate::run_token::RunToken {
            id: self.inner.id.clone(),
            delivery: lease.delivery,
            worker: lease.worker.clone(),
            retries: self.inner.attempt.saturating_sub(1),
            deadline_ms: None,
        })
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
                trace: None,
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

    /// The broker this run came from, so a task can enqueue follow-up work or start a
    /// workflow (`ctx.broker()?.start_workflow(&plan)`). `None` in a detached context.
    pub fn broker(&self) -> Option<&Broker> {
        self.inner.lease.as_ref().map(|l| &l.broker)
    }

    /// This run's trace context, when the task was enqueued with a valid `traceparent`: the
    /// caller's trace id, and a span id of this run's own.
    pub fn trace(&self) -> Option<&TraceParent> {
        self.inner.trace.as_ref()
    }

    /// The `traceparent` header to send with calls this run makes, so they join the trace
    /// as children of this run.
    pub fn traceparent(&self) -> Option<String> {
        self.inner.trace.as_ref().map(ToString::to_string)
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
