//! Waiting without polling: a worker blocks on its queue until work arrives, and the gateway
//! hears about every state change on one pub/sub subscription.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{Broker, BrokerError, RedisConnection};
use crate::id::{QueueName, TaskId};
use crate::reconnect::Backoff;
use crate::record::TaskRecord;

/// A dedicated connection for blocking on one queue; blocking commands must not share the
/// multiplexed connection (they would hold up every other caller) nor time out after 500 ms.
pub struct QueueWaiter {
    broker: Broker,
    queue: QueueName,
    conn: Option<RedisConnection>,
}

impl QueueWaiter {
    pub fn new(broker: &Broker, queue: &QueueName) -> Self {
        Self {
            broker: broker.clone(),
            queue: queue.clone(),
            conn: None,
        }
    }

    /// Blocks until the queue's pending list is non-empty or `timeout` passes, without taking
    /// anything: `BLMOVE list list RIGHT RIGHT` moves the last id onto itself, which leaves the
    /// list as it was. Returns `true` when there is work.
    pub async fn wait_for_work(&mut self, timeout: Duration) -> Result<bool, BrokerError> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.broker.blocking_connection().await?),
        };
        let pending = self.broker.keys().pending(&self.queue);
        let reply: Result<Option<String>, _> = redis::cmd("BLMOVE")
            .arg(&pending)
            .arg(&pending)
            .arg("RIGHT")
            .arg("RIGHT")
            .arg(timeout.as_secs_f64())
            .query_async(conn)
            .await;
        match reply {
            Ok(found) => Ok(found.is_some()),
            Err(e) => {
                self.conn = None;
                Err(e.into())
            }
        }
    }
}

/// A fan-out of the namespace's event channel: each message is a task id whose state or
/// progress changed. An empty message means "re-read everything" (sent after a reconnect,
/// when changes may have been missed).
#[derive(Clone)]
pub struct TaskEvents {
    sender: broadcast::Sender<Arc<str>>,
}

impl TaskEvents {
    /// Subscribes in the background until `stop` fires, re-subscribing after outages.
    pub fn spawn(broker: &Broker, stop: CancellationToken) -> Self {
        let (sender, _) = broadcast::channel(4096);
        let events = Self { sender: sender.clone() };
        let broker = broker.clone();
        tokio::spawn(async move {
            let mut backoff = Backoff::default();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    ended = Self::pump(&broker, &sender, &mut backoff) => {
                        if let Err(e) = ended {
                            tracing::warn!(error = %e, "event subscription lost; reconnecting");
                        }
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_wait()) => {}
                }
            }
        });
        events
    }

    async fn pump(broker: &Broker, sender: &broadcast::Sender<Arc<str>>, backoff: &mut Backoff) -> Result<(), BrokerError> {
        use futures::StreamExt;
        let mut pubsub = broker.pubsub().await?;
        pubsub.subscribe(broker.keys().events_channel()).await?;
        backoff.reset();
        let _ = sender.send(Arc::from(""));
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            // A message names one task, or several separated by spaces (a batch).
            if let Ok(ids) = msg.get_payload::<String>() {
                for id in ids.split(' ').filter(|id| !id.is_empty()) {
                    let _ = sender.send(Arc::from(id));
                }
            }
        }
        Ok(())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.sender.subscribe()
    }
}

impl Broker {
    /// The task's record once it is terminal, or as it is when `timeout` runs out. Wakes on
    /// the task's events; never polls Redis in a loop.
    pub async fn wait_for_terminal(&self, events: &TaskEvents, id: &TaskId, timeout: Duration) -> Result<Option<TaskRecord>, BrokerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let wanted = id.to_string();
        let mut rx = events.subscribe();
        loop {
            let record = self.get(id).await?;
            match &record {
                Some(r) if !r.state.is_terminal() && tokio::time::Instant::now() < deadline => {}
                _ => return Ok(record),
            }
            tokio::select! {
                _ = broadcast_recv(&mut rx, &wanted) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

/// One entry of a task's event log: a state change or a progress report.
///
/// The log is the task hash's field `h` (written by the scripts through `history.lua`): one
/// line per event, `<id> <STATE> <ms>`, or `<id> P <ms> <progress JSON>` for progress.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskEvent {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<crate::state::TaskState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<crate::record::Progress>,
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
            state => (Some(crate::state::TaskState::parse(state)?), None),
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

    /// The id of the task's latest event (0 before any).
    pub async fn last_event_id(&self, id: &TaskId) -> Result<u64, BrokerError> {
        Ok(view(&self.log_fields(id).await?).last_id())
    }

    async fn log_fields(&self, id: &TaskId) -> Result<OwnedLogFields, BrokerError> {
        use crate::record::field;
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
    fn kept_out(&self) -> impl Iterator<Item = (crate::state::TaskState, i64)> {
        let started = self
            .run
            .map(|w| crate::record::StoredRun::parse(w, None))
            .filter(|run| run.unlogged)
            .and_then(|run| Some((crate::state::TaskState::Started, run.started_ms?)));
        let ending = self
            .state
            .and_then(crate::state::TaskState::parse)
            .zip(self.ended.and_then(|z| z.parse().ok()));
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

/// Waits until `rx` carries news about `id` (or a resync marker, or a lag: then something
/// may have been missed, so the caller re-reads).
pub async fn broadcast_recv(rx: &mut broadcast::Receiver<Arc<str>>, id: &str) {
    loop {
        match rx.recv().await {
            Ok(m) if m.is_empty() || *m == *id => return,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
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
