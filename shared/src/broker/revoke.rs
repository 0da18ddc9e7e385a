//! Revoke and manual retry. Revoke: a queued or scheduled task never starts; a running one is marked and its worker is
//! told, on the namespace's control channel, to cancel it (and with `terminate`, to stop it).
//! Retry: a failed or revoked task runs again under its id, from its Redis record or, once
//! that expired, from its archived one.

use super::{Broker, BrokerError, NewTask, scripts};
use crate::id::TaskId;
use crate::record::TaskRecord;
use crate::state::TaskState;

/// What a revoke did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// It was waiting; it is `REVOKED` now and will never run.
    Revoked,
    /// It is running; its worker was told to cancel it. It ends `REVOKED`.
    Signalled,
    /// It had already finished; nothing changed.
    Finished,
    /// No such task.
    Missing,
}

/// Messages on the control channel, which every worker listens to.
pub mod control {
    /// `revoke <task id> <terminate 0|1>`
    pub fn revoke(id: &super::TaskId, terminate: bool) -> String {
        format!("revoke {id} {}", u8::from(terminate))
    }

    /// Parses a revoke message into the id and the terminate flag.
    pub fn parse_revoke(message: &str) -> Option<(super::TaskId, bool)> {
        let mut parts = message.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("revoke"), Some(id), Some(flag)) => Some((super::TaskId::parse(id)?, flag == "1")),
            _ => None,
        }
    }
}

impl Broker {
    /// Revokes the task; a running one is cancelled by its worker (stopped with `terminate`).
    pub async fn revoke(&self, id: &TaskId, terminate: bool, reason: &str) -> Result<RevokeOutcome, BrokerError> {
        let mut call = scripts::REVOKE.prepare_invoke();
        call.key(self.keys.task(id))
            .key(self.keys.pending(id.queue()))
            .key(self.keys.scheduled(id.queue()))
            .key(self.keys.workflow_outbox(id.queue()))
            .key(self.keys.retrying(id.queue()))
            .key(self.keys.stats(id.queue()))
            .key(self.keys.revoking(id.queue()));
        for stream in self.ending_streams(id.queue()) {
            call.key(stream);
        }
        let outcome: String = call
            .arg(id.suffix())
            .arg(self.clock.now_ms())
            .arg(self.result_ttl_secs)
            .arg(self.keys.events_channel())
            .arg(id.to_string())
            .arg(reason)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let outcome = match outcome.as_str() {
            "revoked" => RevokeOutcome::Revoked,
            "signalled" => RevokeOutcome::Signalled,
            "finished" => RevokeOutcome::Finished,
            "missing" => RevokeOutcome::Missing,
            other => return Err(BrokerError::Protocol(format!("revoke returned {other:?}"))),
        };
        if outcome == RevokeOutcome::Signalled {
            let _: i64 = redis::cmd("PUBLISH")
                .arg(self.keys.control_channel())
                .arg(control::revoke(id, terminate))
                .query_async(&mut self.conn.clone())
                .await?;
        }
        Ok(outcome)
    }
}

/// What a manual retry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Back in its queue with a fresh retry budget.
    Queued,
    Missing,
    /// Not failed or revoked: nothing changed.
    NotFinished(TaskState),
    /// An archived member of this workflow: it ran as a step of the workflow and is not run
    /// again apart from it. Nothing changed.
    InWorkflow(String),
}

impl Broker {
    /// Puts a failed (dead-lettered) or revoked task back in its queue with a fresh budget.
    pub async fn retry(&self, id: &TaskId) -> Result<RetryOutcome, BrokerError> {
        let outcome: String = scripts::RETRY
            .key(self.keys.task(id))
            .key(self.keys.dead(id.queue()))
            .key(self.keys.pending(id.queue()))
            .arg(id.suffix())
            .arg(self.keys.events_channel())
            .arg(id.to_string())
            .arg(self.clock.now_ms())
            .invoke_async(&mut self.conn.clone())
            .await?;
        match outcome.as_str() {
            "queued" => Ok(RetryOutcome::Queued),
            "missing" => Ok(RetryOutcome::Missing),
            state => crate::state::TaskState::parse(state)
                .map(RetryOutcome::NotFinished)
                .ok_or_else(|| BrokerError::Protocol(format!("retry returned {state:?}"))),
        }
    }

    /// Puts a failed or revoked task whose Redis record expired back in its queue, from its
    /// archived `record`, under the same id: its name, arguments and options (tags included),
    /// a fresh retry budget and no expiry, as [`Broker::retry`] leaves a live one. Its
    /// uniqueness and debounce are not applied again, as a live retry skips them. Once it ends
    /// again the archive's row of that id is replaced, as after a live retry.
    ///
    /// A dead letter of it still in its queue's dead-letter set is removed first, so the queue
    /// never lists it as dead while it waits. A record that is back in Redis meanwhile (another
    /// retry won the race) is answered as a live retry of it would be.
    pub async fn retry_archived(&self, record: &TaskRecord) -> Result<RetryOutcome, BrokerError> {
        if !matches!(record.state, TaskState::Failure | TaskState::Revoked) {
            return Ok(RetryOutcome::NotFinished(record.state));
        }
        if let Some(link) = &record.workflow {
            return Ok(RetryOutcome::InWorkflow(link.workflow_id.clone()));
        }
        let id = &record.task_id;
        let _: i64 = redis::cmd("ZREM")
            .arg(self.keys.dead(id.queue()))
            .arg(id.suffix())
            .query_async(&mut self.conn.clone())
            .await?;
        let mut task = NewTask::new(id.queue(), &record.task, &record.args);
        task.id = id.clone();
        task.options = record.options.clone();
        task.options.unique_for = None;
        task.options.debounce = None;
        match self.enqueue_plain(id.queue(), &task, 0).await {
            Ok(()) => Ok(RetryOutcome::Queued),
            Err(BrokerError::Duplicate(_)) => self.retry(id).await,
            Err(e) => Err(e),
        }
    }
}
