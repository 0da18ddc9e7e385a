//! `GET /tasks/{id}/events`: Server-Sent Events for progress bars. The task's current record
//! comes first (`snapshot`), then every state change (`state`) and progress report
//! (`progress`) in order as it happens, each with the id of the task's event log; the stream
//! ends after the terminal state. A client that reconnects with `Last-Event-ID` gets every
//! event after that id from the log, so it misses nothing. A task whose Redis record has
//! expired is read from the archive, if there is one: its stream is that record alone (a
//! `snapshot` with `archived: true`, and no id: the log is not archived), then the end.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use celeriac::broker::{TaskEvent, broadcast_recv};
use futures::Stream;
use tokio::sync::mpsc;

use crate::error::{ApiError, ErrorBody};
use crate::routes::tasks::{TaskView, from_archive, parse_task_id};
use crate::scope::Scope;
use crate::state::AppState;

/// Live state changes and progress of a task, as Server-Sent Events.
#[utoipa::path(get, path = "/tasks/{id}/events", tag = "tasks",
    params(("id" = String, Path, description = "Task id"),
           ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id")),
    responses(
        (status = 200, description = "An event stream: `snapshot` (the record), then `state` and `progress` events; for a task read from the archive, its `snapshot` alone", content_type = "text/event-stream"),
        (status = 404, description = "No such task (in Redis, nor in the archive)", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn task_events(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let task_id = parse_task_id(&id)?;
    scope.check_id(&task_id)?;
    let resume_after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Subscribed before the read, so a change after it is heard.
    let mut updates = state.events.subscribe();
    // The record and its log's version come from one read, so they agree: the stream sends
    // exactly the events after the snapshot.
    let (tx, rx) = mpsc::channel::<Event>(64);
    let Some((record, version)) = state.broker.get_with_last_event_id(&task_id).await? else {
        // Expired: the archive's record, which will not change, is the whole stream.
        let archived = from_archive(&state, &scope, &task_id).await?;
        let snapshot = Event::default()
            .event("snapshot")
            .json_data(TaskView::archived(archived))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let _ = tx.send(snapshot).await;
        drop(tx);
        return Ok(sse(rx));
    };
    scope.check_record(&record)?;
    let mut sent = match resume_after {
        Some(after) => after,
        None => {
            let snapshot = Event::default()
                .event("snapshot")
                .id(version.to_string())
                .json_data(&record)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let _ = tx.send(snapshot).await;
            if record.state.is_terminal() {
                drop(tx);
                return Ok(sse(rx));
            }
            version
        }
    };
    let wanted = task_id.to_string();
    tokio::spawn(async move {
        loop {
            let events = match state.broker.task_events(&task_id, sent).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(task_id = %task_id, error = %e, "cannot read task events; ending the stream");
                    return;
                }
            };
            for event in events {
                sent = event.id;
                let terminal = event.state.is_some_and(|s| s.is_terminal());
                if tx.send(to_sse(&event)).await.is_err() || terminal {
                    return;
                }
            }
            tokio::select! {
                _ = broadcast_recv(&mut updates, &wanted) => {}
                _ = tx.closed() => return,
                _ = state.shutdown.cancelled() => return,
                // A safety net against a missed notification (e.g. during a reconnect).
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    });
    Ok(sse(rx))
}

fn sse(mut rx: mpsc::Receiver<Event>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)));
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn to_sse(event: &TaskEvent) -> Event {
    let kind = if event.progress.is_some() { "progress" } else { "state" };
    Event::default()
        .event(kind)
        .id(event.id.to_string())
        .json_data(event)
        .unwrap_or_else(|_| Event::default().comment("unencodable event"))
}
