//! What an enqueue takes and answers: the task to store ([`NewTask`], and the packed spec
//! its record holds), an `Idempotency-Key` claim, and the outcome. Apart from the enqueue
//! itself (enqueue.rs), so that its variants (debounce.rs, unique.rs) and the enqueue share
//! these types without importing each other.

use serde_json::Value;

use super::BrokerError;
use super::fields::StoredSpec;
use crate::id::{QueueName, TaskId, made_ms_of};
use crate::task::TaskOptions;
use crate::trace::TraceParent;

/// A task to store.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: TaskId,
    pub name: String,
    /// The arguments as JSON text.
    pub args: String,
    pub options: TaskOptions,
    /// When it may run, ms since the epoch; `None` = now.
    pub due_ms: Option<i64>,
    /// When it must no longer start, ms since the epoch.
    pub expires_ms: Option<i64>,
    /// `"<workflow id> <node>"` for a workflow member.
    pub workflow: Option<String>,
    /// The W3C `traceparent` of the request that enqueued it, for the run to continue.
    pub traceparent: Option<TraceParent>,
}

impl NewTask {
    /// A task to run as soon as possible with a fresh id.
    pub fn new(queue: &QueueName, name: &str, args: &Value) -> Self {
        Self {
            id: TaskId::generate(queue),
            name: name.to_owned(),
            args: serde_json::to_string(args).expect("a JSON value serializes"),
            options: TaskOptions::default(),
            due_ms: None,
            expires_ms: None,
            workflow: None,
            traceparent: None,
        }
    }
}

impl NewTask {
    /// What enqueue.lua needs beyond the id and the spec: `""` for a task to run now that never
    /// expires, is no workflow member and has priority 0, else `<due ms> <expires ms>
    /// <workflow link>`, with `p<priority> ` in front for a priority above 0.
    pub(super) fn extras(&self) -> String {
        let level = self.level();
        match (self.due_ms, self.expires_ms, &self.workflow, level) {
            (None, None, None, 0) => String::new(),
            (due, expires, link, level) => format!(
                "{}{} {} {}",
                if level > 0 { format!("p{level} ") } else { String::new() },
                due.unwrap_or(0).max(0),
                expires.unwrap_or(0).max(0),
                link.as_deref().unwrap_or("")
            ),
        }
    }

    /// Its priority level, 0 (the default) to 9.
    pub(super) fn level(&self) -> u8 {
        self.options.priority.unwrap_or(0).min(crate::task::MAX_PRIORITY)
    }

    /// The creation time its spec stores when enqueued at `now_ms`: none when its id holds that
    /// very ms (a UUID v7 made then), as it does for nearly every task.
    pub(super) fn created_to_store(&self, now_ms: i64) -> Option<i64> {
        (made_ms_of(self.id.suffix()) != Some(now_ms)).then_some(now_ms)
    }

    /// The packed form stored in the task's hash ([`StoredSpec`]), with `created_ms` as its
    /// creation time (`None`: its id holds it).
    pub(super) fn spec(&self, created_ms: Option<i64>, payload: &crate::payload::PayloadLimits) -> Result<String, BrokerError> {
        if self.name.contains('\n') {
            return Err(BrokerError::InvalidTask(format!(
                "the task name {:?} holds a line break",
                self.name
            )));
        }
        let options = if self.options.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&self.options).expect("options serialize")
        };
        let traceparent = self.traceparent.as_ref().map(ToString::to_string).unwrap_or_default();
        Ok(StoredSpec {
            name: &self.name,
            created_ms,
            traceparent: &traceparent,
            options: &options,
            args: &payload.pack(&self.args),
        }
        .pack())
    }
}

/// An `Idempotency-Key` claim: repeats within the TTL get the first task's id back.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    /// A digest of the request, to tell a true repeat from a reuse of the key.
    pub fingerprint: String,
    pub ttl_secs: u64,
}

/// What an accepted enqueue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The tasks are stored and queued (or scheduled).
    Stored,
    /// The idempotency key was used before; nothing new was stored.
    Replayed { task_id: TaskId, same_request: bool },
    /// The task is unique (`unique_for`) and an equal one is locked: nothing new was stored;
    /// `task_id` is the existing one.
    Unique { task_id: TaskId },
    /// The task is debounced (`debounce`) and its burst's task still waits: that task
    /// (`task_id`) now has this call's arguments and options and starts later; nothing new
    /// was stored.
    Debounced { task_id: TaskId },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_task_sends_no_extras() {
        let queue = QueueName::parse("default").unwrap();
        let mut task = NewTask::new(&queue, "noop", &Value::Null);
        assert_eq!(task.extras(), "");
        task.due_ms = Some(17);
        assert_eq!(task.extras(), "17 0 ");
        task.expires_ms = Some(-3);
        task.workflow = Some("wf1 2".into());
        assert_eq!(task.extras(), "17 0 wf1 2", "a past expiry reads as none, as before");
        task.options.priority = Some(0);
        assert_eq!(task.extras(), "17 0 wf1 2", "priority 0 is the default");
        task.options.priority = Some(4);
        assert_eq!(task.extras(), "p4 17 0 wf1 2");
    }
}
