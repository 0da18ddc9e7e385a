//! A task's event log: the hash field `h` that the scripts append to (history.lua), with the
//! events kept out of it (a marked start in `w`, an ending in `z`), read as one list of
//! [`TaskEvent`]s for `GET /tasks/{id}/events` and for a record's finish time.

use super::fields::{StoredRun, field};
use super::{Broker, BrokerError};
use crate::id::TaskId;
use crate::record::{Progress, TaskRecord};
use crate::state::TaskState;

/// One entry of a task's event log: a state change or a progress report.
///
/// The log is the task hash's field `h` (written by the scripts through `history.lua`): one
/// line per event, `<id> <STATE> <ms>`, or `<id> P <ms> <progress JSON>` for progress.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskEvent {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TaskState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// When it happened, ms since the epoch.
    pub at: i64,
}

impl TaskEvent {
    /// Parses one line of a task's history; `None` for a line it does not understand.
    fn parse(line: &str) -> Option<Self> {
        let mut parts = line.splitn(4, ' ');
        let (id, kind, at) = (parts.next()?.parse().ok()?, parts.next()?, parts.next()?.parse().ok()?);
        let (state, progress) = match kind {
            "P" => (None, Some(serde_json::from_str(parts.next()?).ok()?)),
            state => (Some(TaskState::parse(state)?), None),
        };
        Some(Self { id, state, progress, at })
    }

    /// The id at the start of a history line (of its first line, for a whole history).
    fn parse_id(line: &str) -> Option<u64> {
        let end = line.find(|c: char| !c.is_ascii_digit()).unwrap_or(line.len());
        line[..end].parse().ok()
    }
}

impl Broker {
    /// The task's logged events with an id above `after`, oldest first.
    pub async fn task_events(&self, id: &TaskId, after: u64) -> Result<Vec<TaskEvent>, BrokerError> {
        let fields = self.log_fields(id).await?;
        let mut events = view(&fields).events();
        events.retain(|e| e.id > after);
        Ok(events)
    }

    /// The task's record and the id of its latest event (0 before any), from one read of its
    /// hash, so the two agree: an event stream that starts with this record sends exactly the
    /// events after that id. `None` when there is no record.
    pub async fn get_with_last_event_id(&self, id: &TaskId) -> Result<Option<(TaskRecord, u64)>, BrokerError> {
        let fields = self.task_hash(id).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let text = |name: &str| fields.get(name).map(String::as_str);
        let last = LogFields {
            history: text(field::HISTORY),
            run: text(field::RUN),
            state: text(field::STATE),
            ended: text(field::ENDED),
        }
        .last_id();
        Ok(TaskRecord::from_hash(id.clone(), fields).map(|record| (record, last)))
    }

    async fn log_fields(&self, id: &TaskId) -> Result<OwnedLogFields, BrokerError> {
        Ok(redis::cmd("HMGET")
            .arg(self.keys.task(id))
            .arg(field::HISTORY)
            .arg(field::RUN)
            .arg(field::STATE)
            .arg(field::ENDED)
            .query_async(&mut self.conn.clone())
            .await?)
    }
}

/// The fields `h`, `w`, `s` and `z` as read from Redis.
type OwnedLogFields = (Option<String>, Option<String>, Option<String>, Option<String>);

fn view((history, run, state, ended): &OwnedLogFields) -> LogFields<'_> {
    LogFields {
        history: history.as_deref(),
        run: run.as_deref(),
        state: state.as_deref(),
        ended: ended.as_deref(),
    }
}

/// The fields of a task hash its event log is read from (history.lua): the one place that
/// knows how the events kept out of the log come after it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogFields<'a> {
    /// `h`: the logged events, newest line first.
    pub history: Option<&'a str>,
    /// `w`: the run, marked `*` while its start is not in `h`.
    pub run: Option<&'a str>,
    /// `s`: the state, the kind of an ending kept in `z`.
    pub state: Option<&'a str>,
    /// `z`: the time of a SUCCESS or FAILURE ending not in `h`.
    pub ended: Option<&'a str>,
}

impl LogFields<'_> {
    /// The events kept out of `h`, in their order: the marked start, then the ending.
    fn kept_out(&self) -> impl Iterator<Item = (TaskState, i64)> {
        let started = self
            .run
            .map(|w| StoredRun::parse(w, None))
            .filter(|run| run.unlogged)
            .and_then(|run| Some((TaskState::Started, run.started_ms?)));
        let ending = self.state.and_then(TaskState::parse).zip(self.ended.and_then(|z| z.parse().ok()));
        started.into_iter().chain(ending)
    }

    /// The id of the newest line of `h` (0 for none).
    fn logged_id(&self) -> u64 {
        self.history.and_then(TaskEvent::parse_id).unwrap_or(0)
    }

    /// The task's events kept out of `h`, with the ids that follow its newest line.
    fn kept_out_events(&self) -> impl Iterator<Item = TaskEvent> {
        let first = self.logged_id() + 1;
        self.kept_out().zip(first..).map(|((state, at), id)| TaskEvent {
            id,
            state: Some(state),
            progress: None,
            at,
        })
    }

    /// All the task's events, oldest first: `h`'s lines, then the events kept out of it.
    fn events(&self) -> Vec<TaskEvent> {
        let logged = self.history.unwrap_or_default().lines().rev().filter_map(TaskEvent::parse);
        logged.chain(self.kept_out_events()).collect()
    }

    /// The task's newest event, without reading the rest of the log.
    pub(crate) fn newest(&self) -> Option<TaskEvent> {
        self.kept_out_events()
            .last()
            .or_else(|| TaskEvent::parse(self.history?.lines().next()?))
    }

    /// The id of the task's newest event (0 before any).
    fn last_id(&self) -> u64 {
        self.logged_id() + self.kept_out().count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::{LogFields, TaskEvent};
    use crate::record::Progress;
    use crate::state::TaskState;

    #[test]
    fn history_lines_parse_into_events() {
        let state = TaskEvent::parse("2 SUCCESS 1764626000123").expect("a state line");
        assert_eq!(
            state,
            TaskEvent {
                id: 2,
                state: Some(TaskState::Success),
                progress: None,
                at: 1764626000123
            }
        );
        let progress = TaskEvent::parse(r#"3 P 17 {"current":1,"total":4,"message":"a b c"}"#).expect("a progress line");
        assert_eq!(
            progress.progress,
            Some(Progress {
                current: 1,
                total: 4,
                message: Some("a b c".into())
            })
        );
        assert_eq!((progress.id, progress.state, progress.at), (3, None, 17));
    }

    #[test]
    fn the_version_is_the_id_of_the_newest_line_first() {
        assert_eq!(TaskEvent::parse_id("12 SUCCESS 17\n11 STARTED 16"), Some(12));
        assert_eq!(TaskEvent::parse_id("3 P 17 {}"), Some(3));
        assert_eq!(TaskEvent::parse_id(""), None);
    }

    #[test]
    fn the_events_kept_out_of_the_log_come_after_it() {
        let fields = |history, run, state, ended| LogFields {
            history,
            run,
            state: Some(state),
            ended,
        };
        let summary = |f: &LogFields| f.events().iter().map(|e| (e.id, e.state, e.at)).collect::<Vec<_>>();
        use TaskState::*;
        // A retried task's log, its second start in the run field and its ending in z.
        let done = fields(Some("2 RETRY 5\n1 STARTED 4"), Some("*7 w1"), "SUCCESS", Some("9"));
        assert_eq!(
            summary(&done),
            [
                (1, Some(Started), 4),
                (2, Some(Retry), 5),
                (3, Some(Started), 7),
                (4, Some(Success), 9)
            ]
        );
        // Running, nothing logged yet.
        assert_eq!(summary(&fields(None, Some("*7 w1"), "STARTED", None)), [(1, Some(Started), 7)]);
        // The start already logged (no mark): the log as it is.
        let progressed = fields(
            Some("2 P 8 {\"current\":1,\"total\":2}\n1 STARTED 7"),
            Some("7 w1"),
            "STARTED",
            None,
        );
        assert_eq!(summary(&progressed), [(1, Some(Started), 7), (2, None, 8)]);
        assert_eq!(summary(&fields(None, None, "FAILURE", Some("9"))), [(1, Some(Failure), 9)]);
        // The newest event and its id, read without the rest of the log.
        for f in [done, progressed, fields(None, None, "PENDING", None)] {
            let events = f.events();
            assert_eq!(f.newest(), events.last().cloned(), "{f:?}");
            assert_eq!(f.last_id(), events.last().map_or(0, |e| e.id), "{f:?}");
        }
    }

    #[test]
    fn lines_it_does_not_understand_are_skipped() {
        for line in ["", "x STARTED 1", "1 NOPE 1", "1 STARTED", "1 P 1 {broken"] {
            assert_eq!(TaskEvent::parse(line), None, "{line:?}");
        }
    }
}
