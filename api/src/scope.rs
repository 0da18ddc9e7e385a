//! What a token may reach: a token may be limited to some queues and some task types
//! (`[[auth.tokens]] queues = [...]`, `tasks = [...]`), so one service cannot enqueue into
//! another's queues or read its tasks. The authentication middleware (`auth.rs`) puts the
//! token's [`Scope`] in the request; every route that names a queue or a task checks it
//! (`403` outside it), and the routes that list (tasks, queues, workers, schedules, metrics,
//! hence the dashboard, which reads them) leave out what is outside it. A token without
//! limits, an environment token, and an open gateway have the unlimited scope.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use celeriac::{QueueName, TaskId, TaskRecord};

use crate::error::ApiError;

/// The queues and task types a token may use; `None` for no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    queues: Option<Arc<BTreeSet<QueueName>>>,
    tasks: Option<Arc<BTreeSet<String>>>,
}

impl Scope {
    /// Limited to `queues` and `tasks`; an empty list is no limit on that side.
    pub fn new(queues: &[QueueName], tasks: &[String]) -> Self {
        Self {
            queues: (!queues.is_empty()).then(|| Arc::new(queues.iter().cloned().collect())),
            tasks: (!tasks.is_empty()).then(|| Arc::new(tasks.iter().cloned().collect())),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.queues.is_none() && self.tasks.is_none()
    }

    pub fn allows_queue(&self, queue: &str) -> bool {
        // A shard (`billing~2`) is its queue's: a token for a queue may use all its shards.
        let queue = QueueName::queue_name_of(queue);
        self.queues
            .as_ref()
            .is_none_or(|q| q.iter().any(|allowed| allowed.as_str() == queue))
    }

    pub fn allows_task(&self, task: &str) -> bool {
        self.tasks.as_ref().is_none_or(|t| t.contains(task))
    }

    pub fn allows(&self, queue: &str, task: &str) -> bool {
        self.allows_queue(queue) && self.allows_task(task)
    }

    /// `403` unless the token may use `queue`.
    pub fn check_queue(&self, queue: &str) -> Result<(), ApiError> {
        if self.allows_queue(queue) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!("this token may not use queue {queue}")))
    }

    /// `403` unless the token may use `task` on `queue`.
    pub fn check(&self, queue: &str, task: &str) -> Result<(), ApiError> {
        self.check_queue(queue)?;
        if self.allows_task(task) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!("this token may not use task {task}")))
    }

    /// `403` unless the token may use the task `id` (its queue), then its record (its type).
    pub fn check_id(&self, id: &TaskId) -> Result<(), ApiError> {
        self.check_queue(id.queue().as_str())
    }

    pub fn check_record(&self, record: &TaskRecord) -> Result<(), ApiError> {
        self.check(&record.queue, &record.task)
    }

    /// `403` unless the token may use the task `id`: its queue, and its type when task types
    /// are limited (read from its record; a task without one is left to the route's 404).
    pub async fn check_task(&self, broker: &celeriac::Broker, id: &TaskId) -> Result<(), ApiError> {
        self.check_id(id)?;
        if self.tasks.is_some()
            && let Some(record) = broker.get(id).await?
        {
            self.check_record(&record)?;
        }
        Ok(())
    }

    /// Prometheus text with the samples of queues and task types outside the scope left out.
    pub fn filter_metrics(&self, text: &str) -> String {
        if self.is_unlimited() {
            return text.to_owned();
        }
        let mut kept = String::with_capacity(text.len());
        for line in text.lines() {
            let outside =
                label(line, "queue").is_some_and(|q| !self.allows_queue(q)) || label(line, "task").is_some_and(|t| !self.allows_task(t));
            if !outside {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        kept
    }
}

/// The value of label `name` in a Prometheus sample line (queue names and task names hold no
/// quote; a value that does is not matched, and the line is kept only if no other label
/// puts it out).
fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    if line.starts_with('#') {
        return None;
    }
    let labels = &line[line.find('{')? + 1..line.find('}')?];
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = Infallible;

    /// The scope the authentication middleware found; unlimited where none ran (open routes).
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Scope>().cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new(&[QueueName::parse("billing").unwrap()], &["invoice".into()])
    }

    #[test]
    fn a_scope_allows_only_its_queues_and_tasks() {
        let s = scope();
        assert!(s.allows("billing", "invoice"));
        assert!(!s.allows("emails", "invoice"));
        assert!(!s.allows("billing", "send_email"));
        assert!(matches!(s.check("emails", "invoice"), Err(ApiError::Forbidden(_))));
        assert!(Scope::default().allows("anything", "at_all"));
    }

    #[test]
    fn metrics_of_other_queues_and_tasks_are_left_out() {
        let text = "# HELP celeriac_queue_pending Pending.\n\
                    celeriac_queue_pending{queue=\"billing\"} 1\n\
                    celeriac_queue_pending{queue=\"emails\"} 9\n\
                    celeriac_tasks_started_total{queue=\"billing\",task=\"other\"} 2\n\
                    celeriac_workers_online 3\n";
        let kept = scope().filter_metrics(text);
        assert_eq!(
            kept,
            "# HELP celeriac_queue_pending Pending.\nceleriac_queue_pending{queue=\"billing\"} 1\nceleriac_workers_online 3\n"
        );
    }
}
