//! Unique tasks (`unique_for`): a call whose key (`unique_key`, else the task's name and
//! arguments) has a live lock in its queue creates no task and answers with the locked task's
//! id. The lock is taken in enqueue.lua's claim slot (the one an `Idempotency-Key` uses, which
//! wins when a call has both), so a thousand concurrent calls store one task. It lasts
//! `unique_for` at most, and ends earlier when the task started or finished
//! (`unique_until`; the worker releases it, [`UniqueLock`], [`Broker::release_unique`]), or not at all before
//! the period is over (`period`: a throttle). A lock whose task no longer needs it (revoked
//! or expired before it ran, or a release lost with a crashed worker) is ended by the next
//! duplicate call, which then takes it ([`Broker::end_stale_unique`]). See docs/design.md
//! ("Unique tasks").

use super::new_task::{Idempotency, NewTask};
use super::{Broker, BrokerError, scripts};
use crate::TaskState;
use crate::digest::{FNV_OFFSET, fnv1a};
use crate::id::TaskId;
use crate::task::TaskOptions;

/// The claim value's mark of a unique lock (`<task id> unique`).
pub(crate) const UNIQUE_MARK: &str = "unique";

/// The lock name of a unique task: its `unique_key`, else its name and a 128-bit digest of its
/// arguments (as stored: the same JSON text for the same call).
pub fn unique_key(name: &str, args: &str, options: &TaskOptions) -> Option<String> {
    options.unique_for?;
    Some(match &options.unique_key {
        Some(key) => format!("k:{key}"),
        None => format!(
            "a:{name}:{:016x}{:016x}",
            fnv1a(FNV_OFFSET, args.as_bytes()),
            fnv1a(0x6c62_272e_07bb_0142, args.as_bytes())
        ),
    })
}

impl Broker {
    /// The lock claim of `task` when it is unique, in the form enqueue.lua takes a claim.
    pub(crate) fn unique_claim(&self, task: &NewTask) -> Option<Idempotency> {
        let key = unique_key(&task.name, &task.args, &task.options)?;
        let secs = task.options.unique_for.unwrap_or(1.0).ceil().max(1.0) as u64;
        Some(Idempotency {
            key,
            fingerprint: UNIQUE_MARK.into(),
            ttl_secs: secs,
        })
    }

    /// Ends `lock` if its task `id` still holds it (a later task's lock stays). Returns
    /// whether a lock was released.
    pub async fn release_unique(&self, id: &TaskId, lock: &UniqueLock) -> Result<bool, BrokerError> {
        self.release_unique_key(id, &lock.key).await
    }

    async fn release_unique_key(&self, id: &TaskId, key: &str) -> Result<bool, BrokerError> {
        let released: i64 = scripts::UNIQUE_RELEASE
            .key(self.keys.unique(id.queue(), key))
            .arg(id.to_string())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(released == 1)
    }

    /// Whether the lock that `holder` holds for `task`'s key should have ended already, and
    /// if so ends it: the holder was revoked (or expired) before it ran, or its record is
    /// gone, or it passed the moment of its `unique_until` and its worker's release was lost
    /// (a crash between storing the outcome and releasing). A throttle (`period`) holds for
    /// its period unless its task never ran. `true` when the lock was ended, so the call may
    /// take it.
    pub(crate) async fn end_stale_unique(&self, task: &NewTask, holder: &TaskId) -> Result<bool, BrokerError> {
        let Some(key) = unique_key(&task.name, &task.args, &task.options) else {
            return Ok(false);
        };
        let state = self.get(holder).await?.map(|record| record.state);
        let until = task.options.unique_until.as_deref().unwrap_or("finished");
        let stale = match state {
            None | Some(TaskState::Revoked) => true,
            Some(TaskState::Success | TaskState::Failure) => until != "period",
            Some(TaskState::Started | TaskState::Retry) => until == "started",
            Some(TaskState::Pending | TaskState::Scheduled) => false,
        };
        Ok(stale && self.release_unique_key(holder, &key).await?)
    }
}

/// When a unique task's worker ends its lock before `unique_for` runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueRelease {
    /// Once the task has started (`unique_until = "started"`).
    Started,
    /// Once its final outcome is stored (`unique_until = "finished"`, the default).
    Finished,
}

/// The lock a unique task holds, and when its worker releases it.
#[derive(Debug, Clone)]
pub struct UniqueLock {
    key: String,
    pub release: UniqueRelease,
}

impl UniqueLock {
    /// The lock of the task `name` with `args` (its JSON text) and `options`: `None` when it
    /// is not unique, or is a throttle (`period`: its lock lasts its `unique_for`).
    pub fn of(name: &str, args: &str, options: &TaskOptions) -> Option<Self> {
        let release = match options.unique_until.as_deref().unwrap_or("finished") {
            "started" => UniqueRelease::Started,
            "finished" => UniqueRelease::Finished,
            _ => return None,
        };
        Some(Self {
            key: unique_key(name, args, options)?,
            release,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_callers_or_the_name_and_arguments() {
        let mut options = TaskOptions::default();
        assert_eq!(unique_key("a", "[1]", &options), None, "not unique without unique_for");
        options.unique_for = Some(5.0);
        let by_args = unique_key("a", "[1]", &options).unwrap();
        assert_ne!(Some(by_args.clone()), unique_key("a", "[2]", &options));
        assert_ne!(Some(by_args.clone()), unique_key("b", "[1]", &options));
        assert_eq!(Some(by_args), unique_key("a", "[1]", &options));
        options.unique_key = Some("user-42".into());
        assert_eq!(unique_key("a", "[1]", &options).as_deref(), Some("k:user-42"));
    }
}
