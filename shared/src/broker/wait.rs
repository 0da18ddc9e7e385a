//! Waiting without polling: a worker blocks on its queue until work arrives, and the gateway
//! hears about every state change on one pub/sub subscription.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{Broker, BrokerError};
use crate::id::{QueueName, TaskId};
use crate::reconnect::Backoff;
use crate::record::TaskRecord;

/// A dedicated connection for blocking on one queue; blocking commands must not share the
/// multiplexed connection (they would hold up every other caller) nor time out after 500 ms.
pub struct QueueWaiter {
    broker: Broker,
    queue: QueueName,
    conn: Option<MultiplexedConnection>,
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
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_response_timeout(None)
                    .set_connection_timeout(Some(Duration::from_secs(2)));
                let conn = self.broker.client().get_multiplexed_async_connection_with_config(&config).await?;
                self.conn.insert(conn)
            }
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
        let mut pubsub = broker.client().get_async_pubsub().await?;
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

    /// A task's events, oldest first, from its fields: the log `h` (newest line first) and,
    /// when the task's SUCCESS or FAILURE ending is kept in field `z` (finish.lua), that
    /// ending as the next event.
    fn log(history: Option<&str>, state: Option<&str>, ended: Option<&str>) -> Vec<Self> {
        let mut events: Vec<Self> = history.unwrap_or_default().lines().rev().filter_map(Self::parse).collect();
        events.extend(Self::ending(history, state, ended));
        events
    }

    /// The ending kept in field `z`: the event after the log's newest.
    fn ending(history: Option<&str>, state: Option<&str>, ended: Option<&str>) -> Option<Self> {
        Some(Self {
            id: history.and_then(Self::parse_id).unwrap_or(0) + 1,
            state: Some(crate::state::TaskState::parse(state?)?),
            progress: None,
            at: ended?.parse().ok()?,
        })
    }

    /// The newest event of a history (its first line).
    pub(crate) fn newest(history: &str) -> Option<Self> {
        Self::parse(history.lines().next()?)
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
        use crate::record::field;
        let (history, state, ended): (Option<String>, Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.task(id))
            .arg(field::HISTORY)
            .arg(field::STATE)
            .arg(field::ENDED)
            .query_async(&mut self.conn.clone())
            .await?;
        let mut events = TaskEvent::log(history.as_deref(), state.as_deref(), ended.as_deref());
        events.retain(|e| e.id > after);
        Ok(events)
    }

    /// The id of the task's latest event (0 before any): the id of the history's first line,
    /// or the next one when the ending is kept in field `z`.
    pub async fn last_event_id(&self, id: &TaskId) -> Result<u64, BrokerError> {
        use crate::record::field;
        let (history, ended): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.task(id))
            .arg(field::HISTORY)
            .arg(field::ENDED)
            .query_async(&mut self.conn.clone())
            .await?;
        let newest = history.as_deref().and_then(TaskEvent::parse_id).unwrap_or(0);
        Ok(newest + u64::from(ended.is_some()))
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
    use super::TaskEvent;
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
    fn an_ending_kept_in_its_own_field_is_the_next_event() {
        let log = TaskEvent::log(Some("2 P 5 {\"current\":1,\"total\":2}\n1 STARTED 4"), Some("SUCCESS"), Some("9"));
        let ids: Vec<_> = log.iter().map(|e| (e.id, e.state, e.at)).collect();
        assert_eq!(
            ids,
            [(1, Some(TaskState::Started), 4), (2, None, 5), (3, Some(TaskState::Success), 9)]
        );
        // No ending field: the log as it is.
        assert_eq!(TaskEvent::log(Some("1 STARTED 4"), Some("STARTED"), None).len(), 1);
        assert_eq!(TaskEvent::log(None, Some("FAILURE"), Some("9"))[0].id, 1);
    }

    #[test]
    fn lines_it_does_not_understand_are_skipped() {
        for line in ["", "x STARTED 1", "1 NOPE 1", "1 STARTED", "1 P 1 {broken"] {
            assert_eq!(TaskEvent::parse(line), None, "{line:?}");
        }
    }
}
