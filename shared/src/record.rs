//! The task record as clients see it: plain data, without Redis. How it is stored in its
//! Redis hash, and read back, is the broker's business (`broker/fields.rs`, `broker/decode.rs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::id::TaskId;
use crate::state::TaskState;
use crate::task::{TaskError, TaskOptions};

/// Progress reported by a running task, for progress bars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    pub current: u64,
    pub total: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Everything known about one task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskRecord {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "emails-031ncPED5QTGLrz5ivqvoB"))]
    pub task_id: TaskId,
    /// The registered task name, e.g. `send_email`.
    pub task: String,
    pub queue: String,
    pub state: TaskState,
    /// 1 for the first attempt; a retry after a failure adds one. Redeliveries after a worker
    /// crash or shutdown do not count.
    pub attempt: u32,
    /// How many times a worker took the task (attempts plus crash or shutdown redeliveries).
    pub deliveries: u32,
    /// Retries allowed after the first attempt fails with a retryable error.
    pub max_retries: u32,
    pub args: Value,
    pub options: TaskOptions,
    pub progress: Option<Progress>,
    pub result: Option<Value>,
    pub error: Option<TaskError>,
    pub created_at: Option<DateTime<Utc>>,
    pub eta: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The worker that ran (or runs) it.
    pub worker: Option<String>,
    /// The workflow this task is a member of.
    pub workflow: Option<WorkflowLink>,
    /// The W3C trace id of the request that enqueued it (its `traceparent` header), which
    /// the worker's run continues.
    #[cfg_attr(feature = "openapi", schema(example = "4bf92f3577b34da6a3ce929d0e0e4736"))]
    pub trace_id: Option<String>,
    /// The deliveries of its completion webhook (`callback_url`), oldest first: empty until a
    /// deliverer tried one. Not kept in the archive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookDelivery>,
}

/// One attempt to deliver a task's completion webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// 1 for the first attempt of this ending's webhook.
    pub attempt: u32,
    /// The final state it announced.
    pub state: crate::state::TaskState,
    pub at: DateTime<Utc>,
    /// `delivered` (the receiver answered 2xx), `failed` (tried again later) or `gave_up`
    /// (failed, and no attempt is left).
    #[cfg_attr(feature = "openapi", schema(pattern = "^(delivered|failed|gave_up)$"))]
    pub outcome: String,
    /// The receiver's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the call took, ms.
    pub duration_ms: u64,
}

/// A task's place in a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkflowLink {
    pub workflow_id: String,
    /// Its node in the workflow's plan.
    pub node: usize,
}
