//! The parts of the gateway's answers that the human views show, read leniently: fields the
//! tool does not show are ignored, so a newer gateway with more fields still works. Scripts
//! get the gateway's whole answer with `--json`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// `GET /tasks/{id}` and the items of listings.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskRecord {
    pub task_id: String,
    pub task: String,
    pub queue: String,
    pub state: String,
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub max_retries: u32,
    #[serde(default)]
    pub args: Value,
    pub progress: Option<Progress>,
    pub result: Option<Value>,
    pub error: Option<TaskError>,
    pub created_at: Option<String>,
    pub eta: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub worker: Option<String>,
    #[serde(default)]
    pub options: Option<RecordOptions>,
    /// True when the record comes from the archive (its Redis record expired).
    #[serde(default)]
    pub archived: bool,
}

/// The options of a task's record that the human views show.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecordOptions {
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

impl TaskRecord {
    /// The tags as `name:value`, space-separated (the gateway's search form); empty without.
    pub fn tags_text(&self) -> String {
        let tags = self.options.as_ref().and_then(|o| o.tags.as_ref());
        let tags: Vec<String> = tags.into_iter().flatten().map(|(name, value)| format!("{name}:{value}")).collect();
        tags.join(" ")
    }

    pub fn is_terminal(&self) -> bool {
        is_terminal(&self.state)
    }
}

/// Whether a state name is one a task never leaves.
pub fn is_terminal(state: &str) -> bool {
    matches!(state, "SUCCESS" | "FAILURE" | "REVOKED")
}

#[derive(Debug, Clone, Deserialize)]
pub struct Progress {
    pub current: u64,
    pub total: u64,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaskError {
    pub kind: String,
    pub message: String,
}

/// `202` of an enqueue.
#[derive(Debug, Deserialize)]
pub struct Accepted {
    pub task_id: String,
    pub state: String,
    pub queue: String,
}

/// One event of `GET /tasks/{id}/events` after the snapshot.
#[derive(Debug, Deserialize)]
pub struct TaskEvent {
    pub state: Option<String>,
    pub progress: Option<Progress>,
}

/// An item of `GET /queues`.
#[derive(Debug, Clone, Deserialize)]
pub struct Queue {
    pub name: String,
    pub paused: bool,
    pub pending: u64,
    pub scheduled: u64,
    pub active: u64,
    pub retrying: u64,
    pub dead: u64,
    pub succeeded_last_minute: u64,
    pub failed_last_minute: u64,
    pub oldest_pending_age_secs: Option<f64>,
}

/// An item of `GET /workers`.
#[derive(Debug, Clone, Deserialize)]
pub struct Worker {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub queues: Vec<String>,
    pub concurrency: usize,
    pub running: usize,
    pub processed: u64,
    pub failed: u64,
    pub last_heartbeat: String,
}

/// An item of `GET /schedules`.
#[derive(Debug, Deserialize)]
pub struct Schedule {
    pub name: String,
    pub task: String,
    pub queue: Option<String>,
    pub every: Option<String>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub source: String,
    pub paused: bool,
    pub next_run: Option<String>,
    pub last_run: Option<String>,
}

/// Reads a gateway answer (or a part of it) as `T`, or says it is not what was expected.
pub fn read<T: serde::de::DeserializeOwned>(answer: &Value, what: &str) -> Result<T, crate::error::CliError> {
    serde_json::from_value(answer.clone()).map_err(|e| crate::error::CliError::ServerError {
        status: 200,
        code: "bad_answer".into(),
        message: format!("unexpected {what} from the gateway: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{TaskRecord, read};

    fn record(extra: serde_json::Value) -> TaskRecord {
        let mut answer = json!({"task_id": "default-1", "task": "add", "queue": "default", "state": "SUCCESS"});
        answer.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        read(&answer, "task record").unwrap()
    }

    #[test]
    fn tags_read_leniently_and_show_as_the_search_writes_them() {
        let tagged = record(json!({"options": {"tags": {"user_id": "42", "tenant": "acme"}}, "archived": true}));
        assert_eq!((tagged.tags_text().as_str(), tagged.archived), ("tenant:acme user_id:42", true));
        for bare in [
            json!({}),
            json!({"options": null}),
            json!({"options": {"tags": null}}),
            json!({"options": {}}),
        ] {
            let r = record(bare.clone());
            assert_eq!((r.tags_text().as_str(), r.archived), ("", false), "{bare}");
        }
    }
}
