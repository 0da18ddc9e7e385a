//! Reads a [`TaskRecord`] back from the fields of its Redis hash (layout in `fields.rs`): the
//! one place that turns what the scripts store into what clients see.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{StoredRun, StoredSpec, field, parse_workflow_link};
use super::history::LogFields;
use crate::clock::to_datetime;
use crate::id::TaskId;
use crate::payload::unpack;
use crate::record::TaskRecord;
use crate::state::TaskState;
use crate::task::TaskOptions;
use crate::trace::TraceParent;

impl TaskRecord {
    /// Builds the record from the fields of its hash; `None` if the hash is empty or damaged.
    pub fn from_hash(task_id: TaskId, mut h: HashMap<String, String>) -> Option<Self> {
        let state = TaskState::parse(h.get(field::STATE)?)?;
        let int = |h: &HashMap<String, String>, f: &str| h.get(f).and_then(|v| v.parse::<i64>().ok());
        let time = |h: &HashMap<String, String>, f: &str| int(h, f).and_then(to_datetime);
        let json = |h: &mut HashMap<String, String>, f: &str| h.remove(f).and_then(|v| serde_json::from_str::<Value>(&unpack(&v)).ok());
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
            // Written from the second delivery on: a run without it is the first.
            deliveries: int(&h, field::DELIVERIES).unwrap_or(i64::from(run.is_some())) as u32,
            max_retries: options.max_retries.or(TaskOptions::worker_defaults().max_retries).unwrap_or(0),
            args: serde_json::from_str(&unpack(spec.args)).unwrap_or(Value::Null),
            progress: json(&mut h, field::PROGRESS).and_then(|v| serde_json::from_value(v).ok()),
            result: json(&mut h, field::RESULT),
            error: json(&mut h, field::ERROR).and_then(|v| serde_json::from_value(v).ok()),
            created_at: spec.created_ms_of(task_id.suffix()).and_then(to_datetime),
            eta: time(&h, field::ETA),
            started_at: run.as_ref().and_then(|r| r.started_ms).and_then(to_datetime),
            finished_at: finished_ms.and_then(to_datetime),
            expires_at: time(&h, field::EXPIRES),
            worker: run.map(|r| r.worker),
            workflow: h.get(field::WORKFLOW).and_then(|w| parse_workflow_link(w)),
            trace_id: TraceParent::parse(spec.traceparent).map(|tp| tp.trace_id().to_owned()),
            webhooks: h
                .get(field::WEBHOOKS)
                .map(|log| log.lines().filter_map(|line| serde_json::from_str(line).ok()).collect())
                .unwrap_or_default(),

            options,
            task_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn deliveries_are_the_count_field_else_one_for_a_record_with_a_run() {
        let id = TaskId::parse("default-0193a1b2c3d4e5f60718293a4b5c6d7e").unwrap();
        let deliveries = |fields: &[(&str, &str)]| {
            let h = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            TaskRecord::from_hash(id.clone(), h).unwrap().deliveries
        };
        let spec = ("t", "echo\n1\n\n\n[1]");
        assert_eq!(deliveries(&[("s", "PENDING"), spec]), 0);
        // A first start writes the run field alone (start_tasks.lua).
        assert_eq!(deliveries(&[("s", "STARTED"), spec, ("w", "*1764626000000 w1")]), 1);
        assert_eq!(deliveries(&[("s", "STARTED"), spec, ("w", "*1764626000000 w1"), ("d", "3")]), 3);
        // Requeued after a start: the run field is gone, the count stays.
        assert_eq!(deliveries(&[("s", "PENDING"), spec, ("d", "1")]), 1);
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
