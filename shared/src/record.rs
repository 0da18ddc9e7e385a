//! The task record as stored in its Redis hash, and as clients see it.
//!
//! The hash uses one- and two-letter field names to keep a pending task small; this module is
//! the only place that knows them besides the Lua scripts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::broker::LogFields;
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
    pub const STATE: &str = "s";
    /// The task as enqueued, packed ([`super::StoredSpec`]).
    pub const SPEC: &str = "t";
    pub const DELIVERIES: &str = "d";
    pub const RETRIES: &str = "rt";
    /// The current or last run: `<started ms> <worker id>`, one field (fewer fields is
    /// cheaper for every script that reads or writes the hash). Marked `*` in front while its
    /// STARTED event is not in [`HISTORY`] yet (history.lua).
    pub const RUN: &str = "w";
    pub const RESULT: &str = "r";
    pub const ERROR: &str = "e";
    pub const PROGRESS: &str = "p";
    pub const ETA: &str = "eta";
    pub const EXPIRES: &str = "x";
    pub const WORKFLOW: &str = "wf";
    /// The event log, newest line first (history.lua).
    pub const HISTORY: &str = "h";
    /// When a SUCCESS or FAILURE run ended (ms; finish.lua). That ending is the history's
    /// newest event, kept out of [`HISTORY`] so the acknowledgement need not read the log.
    pub const ENDED: &str = "z";
    /// Records stored before the spec field existed kept its parts in fields of their own;
    /// they are still read (start.lua does the same), so an upgrade loses no pending task.
    pub mod legacy {
        pub const NAME: &str = "n";
        pub const ARGS: &str = "a";
        pub const CREATED: &str = "c";
        pub const OPTIONS: &str = "o";
        pub const TRACEPARENT: &str = "tp";
        /// The finish time, now read off the history's newest line.
        pub const FINISHED: &str = "fa";
        /// The start time, now the first part of [`super::RUN`] (then holding only the worker).
        pub const STARTED: &str = "sa";
    }
}

/// What is fixed about a task at enqueue, packed in one hash field (`t`) so the scripts read
/// and write it as one value, and Redis keeps one field instead of five:
/// `<name>\n<created ms>\n<traceparent>\n<options JSON>\n<args JSON>`, each part empty when
/// there is none. The arguments come last, so their text may hold anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredSpec<'a> {
    pub name: &'a str,
    pub created_ms: Option<i64>,
    pub traceparent: &'a str,
    /// The task's options as JSON, or empty for none.
    pub options: &'a str,
    pub args: &'a str,
}

impl<'a> StoredSpec<'a> {
    /// The stored form. A name holding a line break would not read back, so the caller
    /// ([`crate::broker::Broker::enqueue`]) refuses one.
    pub fn pack(&self) -> String {
        let created = self.created_ms.map(|ms| ms.to_string()).unwrap_or_default();
        let parts = [self.name, &created, self.traceparent, self.options, self.args];
        parts.join("\n")
    }

    /// Reads the stored form. Never fails: a damaged spec gives empty parts, and the worker
    /// then fails the run for good (no such task, or arguments that are not JSON).
    pub fn parse(raw: &'a str) -> Self {
        let mut parts = raw.splitn(5, '\n');
        let mut next = || parts.next().unwrap_or_default();
        Self {
            name: next(),
            created_ms: next().parse().ok(),
            traceparent: next(),
            options: next(),
            args: next(),
        }
    }

    /// The spec of a record stored before the spec field existed, packed from its old fields.
    fn from_legacy_fields(h: &HashMap<String, String>) -> String {
        let get = |f: &str| h.get(f).map(String::as_str).unwrap_or_default();
        StoredSpec {
            name: get(field::legacy::NAME),
            created_ms: get(field::legacy::CREATED).parse().ok(),
            traceparent: get(field::legacy::TRACEPARENT),
            options: get(field::legacy::OPTIONS),
            args: get(field::legacy::ARGS),
        }
        .pack()
    }
}

impl TaskRecord {
    /// Builds the record from the fields of its hash; `None` if the hash is empty or damaged.
    pub fn from_hash(task_id: TaskId, mut h: HashMap<String, String>) -> Option<Self> {
        let state = TaskState::parse(h.get(field::STATE)?)?;
        let int = |h: &HashMap<String, String>, f: &str| h.get(f).and_then(|v| v.parse::<i64>().ok());
        let time = |h: &HashMap<String, String>, f: &str| int(h, f).and_then(to_datetime);
        let json = |h: &mut HashMap<String, String>, f: &str| h.remove(f).and_then(|v| serde_json::from_str::<Value>(&v).ok());
        let packed = h.remove(field::SPEC).unwrap_or_else(|| StoredSpec::from_legacy_fields(&h));
        let spec = StoredSpec::parse(&packed);
        let options: TaskOptions = serde_json::from_str(spec.options).unwrap_or_default();
        let log = LogFields {
            history: h.get(field::HISTORY).map(String::as_str),
            run: h.get(field::RUN).map(String::as_str),
            state: h.get(field::STATE).map(String::as_str),
            ended: h.get(field::ENDED).map(String::as_str),
        };
        // A finished task's newest event is its ending: its time is the finish time.
        let finished_ms = int(&h, field::legacy::FINISHED).or_else(|| {
            let newest = log.newest()?;
            (state.is_terminal() && newest.state == Some(state)).then_some(newest.at)
        });
        let run = h
            .remove(field::RUN)
            .map(|run| StoredRun::parse(&run, int(&h, field::legacy::STARTED)));
        Some(TaskRecord {
            queue: task_id.queue().to_string(),
            task: spec.name.to_owned(),
            state,
            attempt: int(&h, field::RETRIES).unwrap_or(0) as u32 + 1,
            deliveries: int(&h, field::DELIVERIES).unwrap_or(0) as u32,
            max_retries: options.max_retries.or(TaskOptions::worker_defaults().max_retries).unwrap_or(0),
            args: serde_json::from_str(spec.args).unwrap_or(Value::Null),
            progress: json(&mut h, field::PROGRESS).and_then(|v| serde_json::from_value(v).ok()),
            result: json(&mut h, field::RESULT),
            error: json(&mut h, field::ERROR).and_then(|v| serde_json::from_value(v).ok()),
            created_at: spec.created_ms.and_then(to_datetime),
            eta: time(&h, field::ETA),
            started_at: run.as_ref().and_then(|r| r.started_ms).and_then(to_datetime),
            finished_at: finished_ms.and_then(to_datetime),
            expires_at: time(&h, field::EXPIRES),
            worker: run.map(|r| r.worker),
            workflow: h.get(field::WORKFLOW).and_then(|w| WorkflowLink::parse(w)),
            trace_id: TraceParent::parse(spec.traceparent).map(|tp| tp.trace_id().to_owned()),

            options,
            task_id,
        })
    }
}

/// Who runs (or ran) a task, and since when: field `w`.
pub(crate) struct StoredRun {
    pub started_ms: Option<i64>,
    pub worker: String,
    /// Marked `*`: this start's STARTED event is not in the history yet (history.lua).
    pub unlogged: bool,
}

impl StoredRun {
    /// Reads `[*]<started ms> <worker id>`; a record stored before the start time moved here
    /// holds only the worker id, and its start time in `legacy_started`.
    pub(crate) fn parse(raw: &str, legacy_started: Option<i64>) -> Self {
        let (unlogged, raw) = match raw.strip_prefix('*') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        match raw.split_once(' ').and_then(|(ms, worker)| Some((ms.parse().ok()?, worker))) {
            Some((started, worker)) => Self {
                started_ms: Some(started),
                worker: worker.to_owned(),
                unlogged,
            },
            None => Self {
                started_ms: legacy_started,
                worker: raw.to_owned(),
                unlogged,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_back_as_packed() {
        let spec = StoredSpec {
            name: "send_email",
            created_ms: Some(1_764_626_000_123),
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            options: r#"{"max_retries":2}"#,
            args: "{\"body\":\"two\nlines\"}\n",
        };
        assert_eq!(StoredSpec::parse(&spec.pack()), spec);
        let bare = StoredSpec {
            name: "noop",
            created_ms: None,
            traceparent: "",
            options: "",
            args: "null",
        };
        assert_eq!(StoredSpec::parse(&bare.pack()), bare);
    }

    #[test]
    fn a_finished_task_finished_at_its_newest_event() {
        let id = TaskId::parse("default-0193a1b2c3d4e5f60718293a4b5c6d7e").unwrap();
        let finished_at = |fields: &[(&str, &str)]| {
            let h = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            TaskRecord::from_hash(id.clone(), h)
                .unwrap()
                .finished_at
                .map(|t| t.timestamp_millis())
        };
        let spec = ("t", "echo\n1\n\n\n[1]");
        let logged = [
            ("s", "SUCCESS"),
            spec,
            ("h", "3 SUCCESS 1764626000123\n2 P 1764626000100 {}\n1 STARTED 1764626000000"),
        ];
        assert_eq!(finished_at(&logged), Some(1_764_626_000_123));
        // As finish.lua stores it: the ending's time in its own field, not in the log.
        let ended = [("s", "SUCCESS"), spec, ("z", "1764626000456"), ("h", "1 STARTED 1764626000000")];
        assert_eq!(finished_at(&ended), Some(1_764_626_000_456));
        assert_eq!(finished_at(&[("s", "STARTED"), spec, ("h", "1 STARTED 1764626000000")]), None);
        // A record from before: its own finish-time field is read first.
        let old = [("s", "SUCCESS"), spec, ("fa", "1764626000999"), ("h", "2 SUCCESS 5\n1 STARTED 4")];
        assert_eq!(finished_at(&old), Some(1_764_626_000_999));
    }

    #[test]
    fn the_run_field_holds_the_start_time_and_the_worker_and_older_records_still_read() {
        let run = StoredRun::parse("1764626000000 vm.12.ab", None);
        assert_eq!((run.started_ms, run.worker.as_str()), (Some(1_764_626_000_000), "vm.12.ab"));
        let unlogged = StoredRun::parse("*1764626000000 vm.12.ab", None);
        assert_eq!(
            (unlogged.started_ms, unlogged.worker.as_str()),
            (Some(1_764_626_000_000), "vm.12.ab")
        );
        let old = StoredRun::parse("vm.12.ab", Some(17));
        assert_eq!((old.started_ms, old.worker.as_str()), (Some(17), "vm.12.ab"));
        let spaced = StoredRun::parse("my worker", Some(17));
        assert_eq!((spaced.started_ms, spaced.worker.as_str()), (Some(17), "my worker"));
    }

    #[test]
    fn a_damaged_spec_reads_as_empty_parts() {
        let spec = StoredSpec::parse("echo");
        assert_eq!((spec.name, spec.created_ms, spec.args), ("echo", None, ""));
    }

    #[test]
    fn a_record_stored_before_the_spec_field_still_reads() {
        let id = TaskId::parse("default-0193a1b2c3d4e5f60718293a4b5c6d7e").unwrap();
        let fields = [
            ("s", "PENDING"),
            ("n", "echo"),
            ("a", "[1]"),
            ("c", "1764626000123"),
            ("o", r#"{"max_retries":3}"#),
        ];
        let h = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let record = TaskRecord::from_hash(id, h).expect("a record");
        assert_eq!(
            (record.task.as_str(), record.args.clone(), record.max_retries),
            ("echo", serde_json::json!([1]), 3)
        );
        assert_eq!(record.created_at.map(|t| t.timestamp_millis()), Some(1_764_626_000_123));
    }
}
