//! One archived task: the row of `celeriac_tasks` built from what an archive stream entry hands
//! over (its task id and the record's fields, read from the record's `DUMP`: stream.rs),
//! decoded by the library's `TaskRecord::from_hash` like any record read from Redis.

use std::collections::HashMap;

use celeriac::{TaskId, TaskRecord, TaskState};
use chrono::{DateTime, Utc};

/// A row of `celeriac_tasks`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedTask {
    pub task_id: String,
    pub task: String,
    pub queue: String,
    pub state: String,
    /// The JSON columns hold their text, written once from the record (jsonb is cast from it
    /// by the upsert): no `Value` in between.
    pub args: String,
    pub result: Option<String>,
    pub error: Option<String>,
    pub attempts: i32,
    pub deliveries: i32,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: DateTime<Utc>,
    pub queue_wait_ms: Option<i64>,
    pub run_time_ms: Option<i64>,
    pub worker: Option<String>,
    pub workflow_id: Option<String>,
    pub trace_id: Option<String>,
    pub tags: String,
    /// The task's options as the record holds them (tags included).
    pub options: String,
    pub max_retries: i32,
    pub workflow_node: Option<i32>,
    pub eta: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl ArchivedTask {
    /// The row for the record a stream entry handed over (its task id and fields), or why it
    /// cannot be one. `entry_ms` (the entry's stream id time, when the ending was handed over)
    /// is the finish time of a record that has none.
    pub fn from_entry(raw_id: &str, fields: HashMap<String, String>, entry_ms: i64) -> Result<Self, String> {
        let id = TaskId::parse(raw_id).ok_or_else(|| format!("an entry with a bad task id {raw_id:?}"))?;
        let record = TaskRecord::from_hash(id, fields).ok_or_else(|| format!("task {raw_id}: an entry without a state"))?;
        if !matches!(record.state, TaskState::Success | TaskState::Failure | TaskState::Revoked) {
            return Err(format!("task {raw_id}: handed over while {}", record.state));
        }
        Ok(Self::from_record(record, entry_ms))
    }

    fn from_record(r: TaskRecord, entry_ms: i64) -> Self {
        let finished_at = r
            .finished_at
            .or_else(|| DateTime::from_timestamp_millis(entry_ms))
            .unwrap_or_else(Utc::now);
        let between = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| Some((b? - a?).num_milliseconds().max(0));
        Self {
            task_id: r.task_id.to_string(),
            state: r.state.to_string(),
            queue_wait_ms: between(r.eta.or(r.created_at), r.started_at),
            run_time_ms: r.started_at.and_then(|s| between(Some(s), Some(finished_at))),
            task: r.task,
            queue: r.queue,
            args: json(&r.args),
            result: r.result.as_ref().map(json),
            error: r.error.as_ref().map(json),
            attempts: r.attempt as i32,
            deliveries: r.deliveries as i32,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at,
            worker: r.worker,
            workflow_node: r.workflow.as_ref().map(|w| w.node as i32),
            workflow_id: r.workflow.map(|w| w.workflow_id),
            trace_id: r.trace_id,
            tags: r.options.tags.as_ref().map_or_else(|| "{}".to_owned(), json),
            options: json(&r.options),
            max_retries: r.max_retries as i32,
            eta: r.eta,
            expires_at: r.expires_at,
        }
    }
}

/// A column's JSON text. `serde_json::to_string`, not `Value::to_string`: the `Display` route
/// goes through the formatter, several times slower.
fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("a record's JSON serializes")
}
