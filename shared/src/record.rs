//! The task record as stored in its Redis hash, and as clients see it.
//!
//! The hash uses one- and two-letter field names to keep a pending task small; this module is
//! the only place that knows them besides the Lua scripts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::clock::to_datetime;
use crate::id::TaskId;
use crate::state::TaskState;
use crate::task::{TaskError, TaskOptions};
use crate::trace::TraceParent;

/// Progress reported by a running task, for progress bars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    pub current: u64,
    pub total: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Everything known about one task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskRecord {
    #[schema(value_type = String, example = "emails-0193a1b2c3d4e5f60718293a4b5c6d7e")]
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
    #[schema(example = "4bf92f3577b34da6a3ce929d0e0e4736")]
    pub trace_id: Option<String>,
}

/// A task's place in a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowLink {
    pub workflow_id: String,
    /// Its node in the workflow's plan.
    pub node: usize,
}

impl WorkflowLink {
    /// Parses the stored form `"<workflow id> <node>"`.
    pub fn parse(raw: &str) -> Option<Self> {
        let (id, node) = raw.split_once(' ')?;
        Some(Self {
            workflow_id: id.to_owned(),
            node: node.parse().ok()?,
        })
    }
}

/// Field names of the task hash.
pub(crate) mod field {
    pub const NAME: &str = "n";
    pub const ARGS: &str = "a";
    pub const STATE: &str = "s";
    pub const CREATED: &str = "c";
    pub const OPTIONS: &str = "o";
    pub const DELIVERIES: &str = "d";
    pub const RETRIES: &str = "rt";
    pub const WORKER: &str = "w";
    pub const STARTED: &str = "sa";
    pub const FINISHED: &str = "fa";
    pub const RESULT: &str = "r";
    pub const ERROR: &str = "e";
    pub const PROGRESS: &str = "p";
    pub const ETA: &str = "eta";
    pub const EXPIRES: &str = "x";
    pub const WORKFLOW: &str = "wf";
    pub const TRACEPARENT: &str = "tp";
}

impl TaskRecord {
    /// Builds the record from the fields of its hash; `None` if the hash is empty or damaged.
    pub fn from_hash(task_id: TaskId, mut h: HashMap<String, String>) -> Option<Self> {
        let state = TaskState::parse(h.get(field::STATE)?)?;
        let int = |h: &HashMap<String, String>, f: &str| h.get(f).and_then(|v| v.parse::<i64>().ok());
        let time = |h: &HashMap<String, String>, f: &str| int(h, f).and_then(to_datetime);
        let json = |h: &mut HashMap<String, String>, f: &str| h.remove(f).and_then(|v| serde_json::from_str::<Value>(&v).ok());
        let options: TaskOptions = h.get(field::OPTIONS).and_then(|o| serde_json::from_str(o).ok()).unwrap_or_default();
        Some(TaskRecord {
            queue: task_id.queue().to_string(),
            task: h.remove(field::NAME).unwrap_or_default(),
            state,
            attempt: int(&h, field::RETRIES).unwrap_or(0) as u32 + 1,
            deliveries: int(&h, field::DELIVERIES).unwrap_or(0) as u32,
            max_retries: options.max_retries.or(TaskOptions::worker_defaults().max_retries).unwrap_or(0),
            args: json(&mut h, field::ARGS).unwrap_or(Value::Null),
            progress: json(&mut h, field::PROGRESS).and_then(|v| serde_json::from_value(v).ok()),
            result: json(&mut h, field::RESULT),
            error: json(&mut h, field::ERROR).and_then(|v| serde_json::from_value(v).ok()),
            created_at: time(&h, field::CREATED),
            eta: time(&h, field::ETA),
            started_at: time(&h, field::STARTED),
            finished_at: time(&h, field::FINISHED),
            expires_at: time(&h, field::EXPIRES),
            worker: h.remove(field::WORKER),
            workflow: h.get(field::WORKFLOW).and_then(|w| WorkflowLink::parse(w)),
            trace_id: h
                .get(field::TRACEPARENT)
                .and_then(|tp| TraceParent::parse(tp))
                .map(|tp| tp.trace_id().to_owned()),

            options,
            task_id,
        })
    }
}
