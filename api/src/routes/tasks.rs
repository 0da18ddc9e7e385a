//! `POST /tasks` (enqueue any registered task) and `GET /tasks/{id}` (its record, with an
//! optional long poll).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use celeriac::broker::{Hold, RetryOutcome, RevokeOutcome};
use celeriac::{TaskId, TaskRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::enqueue::{Accepted, TaskRequest, enqueue};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, OptionalJson};
use crate::scope::Scope;
use crate::state::AppState;

/// Enqueue any registered task.
#[utoipa::path(post, path = "/tasks", tag = "tasks",
    request_body = TaskRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]{1,200}$", description = "Repeats with the same key within 24 h return the first task"),
           ("traceparent" = Option<String>, Header, description = "W3C trace context; the run continues the trace (an invalid one is ignored)")),
    responses(
        (status = 202, description = "Stored and queued", body = Accepted, headers(("Location" = String, description = "The task's status URL"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Unknown task, or a field missing or invalid", body = ErrorBody),
        (status = 429, description = "The queue is full", body = ErrorBody),
        (status = 503, description = "Redis is unreachable; nothing was stored", body = ErrorBody),
    ))]
pub async fn post_task(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    ApiJson(request): ApiJson<TaskRequest>,
) -> Result<Response, ApiError> {
    enqueue(&state, &headers, &scope, &request.task, request.args, request.options).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Wait up to this many seconds (at most `http.max_wait`, 60 by default) for the task to
    /// finish before answering.
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<f64>,
}

/// A task's record: state, progress, result or error.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id"), WaitQuery),
    responses(
        (status = 200, description = "The task (from the archive once its record expired, with `archived: true`)", body = TaskView),
        (status = 404, description = "No such task, or its record expired (and it is not archived)", body = ErrorBody),
        (status = 422, description = "Invalid wait", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn get_task(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TaskView>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::invalid("wait", "must be a number of seconds"))?;
    let id = parse_task_id(&id)?;
    scope.check_task(&state.broker, &id).await?;
    let max_wait = state.settings.http.max_wait.as_secs_f64();
    let record = match query.wait {
        None => state.broker.get(&id).await?,
        Some(w) if w.is_finite() && (0.0..=max_wait).contains(&w) => {
            let wait = state.broker.wait_for_terminal(&state.events, &id, Duration::from_secs_f64(w));
            tokio::select! {
                record = wait => record?,
                _ = state.shutdown.cancelled() => state.broker.get(&id).await?,
            }
        }
        Some(_) => return Err(ApiError::invalid("wait", format!("must be from 0 to {max_wait} seconds"))),
    };
    if let Some(record) = record {
        let mut view = TaskView::live(record);
        view.held = held(&state, &view.record).await?;
        return Ok(Json(view));
    }
    Ok(Json(TaskView::archived(from_archive(&state, &scope, &id).await?)))
}

/// The task's record from the archive, once Redis has let it go: `404` without an archive or
/// if it is not there, `403` if the caller's scope does not cover its type (which only the
/// record tells by then).
pub(crate) async fn from_archive(state: &AppState, scope: &Scope, id: &TaskId) -> Result<TaskRecord, ApiError> {
    let record = archived_record(state, id).await?.ok_or_else(|| not_found(&id.to_string()))?;
    scope.check_record(&record)?;
    Ok(record)
}

/// The task's record from the archive: none without one, or if it is not there.
pub(crate) async fn archived_record(state: &AppState, id: &TaskId) -> Result<Option<TaskRecord>, ApiError> {
    match &state.history {
        Some(history) => Ok(history.get(id).await?),
        None => Ok(None),
    }
}

/// A task's record as the gateway shows it: live from Redis, or from the archive once the
/// record expired (the same fields, and `archived: true`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    #[serde(flatten)]
    pub record: TaskRecord,
    /// True when the record comes from the PostgreSQL archive (absent for a live record).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub archived: bool,
    /// Why a `PENDING` task waits although its queue has tasks to hand out: a limit of its
    /// queue holds it back (`GET /tasks/{id}` only; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

impl TaskView {
    pub fn live(record: TaskRecord) -> Self {
        Self {
            record,
            archived: false,
            held: None,
        }
    }

    pub fn archived(record: TaskRecord) -> Self {
        Self {
            record,
            archived: true,
            held: None,
        }
    }
}

/// Why a waiting task waits, when a limit holds it back: its key's (parked for a slot, or
/// scheduled for a token), else its queue's.
async fn held(state: &AppState, record: &TaskRecord) -> Result<Option<String>, ApiError> {
    let waiting = matches!(record.state, celeriac::TaskState::Pending | celeriac::TaskState::Scheduled);
    if !waiting {
        return Ok(None);
    }
    let key = record.options.limit_key.as_deref().unwrap_or(&record.task);
    if let Some(why) = state.broker.key_hold(&record.task_id, record.state, key).await? {
        return Ok(Some(why));
    }
    if record.state != celeriac::TaskState::Pending {
        return Ok(None);
    }
    Ok(state.broker.hold_of(record.task_id.queue()).await?.map(|hold| held_because(&hold)))
}

/// What a limit that holds a queue's tasks back says in their records.
fn held_because(hold: &Hold) -> String {
    match hold {
        Hold::Rate { wait } => format!(
            "held back by its queue's rate limit; the next token comes in {} ms",
            wait.as_millis()
        ),
        Hold::Concurrency => "held back by its queue's concurrency cap: every slot is in use".to_owned(),
    }
}

/// The optional body of `POST /tasks/{id}/revoke`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Also stop a running task at once (otherwise it is only asked to stop, through its
    /// cancellation token).
    #[serde(default)]
    pub terminate: bool,
}

/// The answer to a revoke or a retry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActionResult {
    #[schema(example = "emails-031ncPED5QTGLrz5ivqvoB")]
    pub task_id: String,
    /// `revoked` (it will never run), `signalled` (it is running and is being stopped),
    /// or `queued` (a retry).
    #[schema(example = "revoked")]
    pub outcome: String,
}

/// Revoke a queued or scheduled task (it never starts), or cancel a running one.
#[utoipa::path(post, path = "/tasks/{id}/revoke", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    request_body(content = Option<RevokeRequest>, description = "Optional: `terminate` a running task"),
    responses(
        (status = 200, description = "Revoked, or the running task was told to stop", body = ActionResult),
        (status = 404, description = "No such task", body = ErrorBody),
        (status = 409, description = "The task has already finished", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn revoke_task(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
    OptionalJson(request): OptionalJson<Option<RevokeRequest>>,
) -> Result<Json<ActionResult>, ApiError> {
    let request = request.unwrap_or_default();
    let task_id = parse_task_id(&id)?;
    scope.check_task(&state.broker, &task_id).await?;
    let outcome = match state.broker.revoke(&task_id, request.terminate, "revoked through the API").await? {
        RevokeOutcome::Revoked => "revoked",
        RevokeOutcome::Signalled => "signalled",
        RevokeOutcome::Finished => return Err(ApiError::Conflict(format!("task {id} has already finished"))),
        RevokeOutcome::Missing => return Err(not_found(&id)),
    };
    Ok(Json(ActionResult {
        task_id: id,
        outcome: outcome.into(),
    }))
}

/// Run a failed (dead-lettered) or revoked task again, with a fresh retry budget, under its
/// id. Once its Redis record has expired, it is stored anew from the archive's record (same
/// name, arguments and options, tags included), unless it ran in a workflow.
#[utoipa::path(post, path = "/tasks/{id}/retry", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Queued again", body = ActionResult),
        (status = 404, description = "No such task (nor in the archive)", body = ErrorBody),
        (status = 409, description = "The task has not failed, or it is an archived workflow member", body = ErrorBody),
        (status = 503, description = "Redis or the archive is unreachable", body = ErrorBody),
    ))]
pub async fn retry_task(State(state): State<AppState>, scope: Scope, Path(id): Path<String>) -> Result<Json<ActionResult>, ApiError> {
    let task_id = parse_task_id(&id)?;
    scope.check_task(&state.broker, &task_id).await?;
    let outcome = match state.broker.retry(&task_id).await? {
        RetryOutcome::Missing => state.broker.retry_archived(&from_archive(&state, &scope, &task_id).await?).await?,
        live => live,
    };
    match outcome {
        RetryOutcome::Queued => Ok(Json(ActionResult {
            task_id: id,
            outcome: "queued".into(),
        })),
        RetryOutcome::Missing => Err(not_found(&id)),
        RetryOutcome::NotFinished(s) => Err(ApiError::Conflict(format!(
            "task {id} is {s}: only failed or revoked tasks can be retried"
        ))),
        RetryOutcome::InWorkflow(workflow) => Err(ApiError::Conflict(format!(
            "task {id} ran in workflow {workflow}: once its record has expired it is not run again apart from it"
        ))),
    }
}

/// The answer for an id that is malformed, never existed or whose record expired.
pub(crate) fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no task {id:?}: it never existed or its record expired"))
}

/// A task id from the path; a malformed one cannot name a task, so it is `404` too.
pub(crate) fn parse_task_id(raw: &str) -> Result<TaskId, ApiError> {
    TaskId::parse(raw).ok_or_else(|| not_found(raw))
}
