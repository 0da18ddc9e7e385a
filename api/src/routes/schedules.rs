//! Periodic schedules at run time: list, read, create or replace, delete, pause, resume, and
//! fire now. Schedules made here live in Redis and survive restarts; those from the settings
//! file can be paused, resumed and fired, but only the file changes or removes them (`409`).
//! The `celeriac-beat` processes pick up every change within a second.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use celeriac::TaskOptions;
use celeriac::broker::{DeleteOutcome, FiredRun, PutOutcome, ScheduleEntry, ScheduleSource};
use celeriac::catalog::CallError;
use celeriac::clock::to_datetime;
use celeriac::schedule::{Misfire, Schedule, ScheduleDef, ScheduleOptions, validate_name};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::enqueue::{Accepted, accepted, enqueue_task};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::scope::Scope;
use crate::state::AppState;

/// The body of `PUT /schedules/{name}`: the task, and `every` or `cron` (not both).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// A registered task name.
    #[schema(example = "noop")]
    pub task: String,
    /// The task's arguments (any JSON).
    #[serde(default)]
    pub args: Value,
    /// Queue to use instead of the task's route.
    pub queue: Option<String>,
    /// An interval: `30s`, `5m`, `1h30m`, `1d` (from 1 second; aligned to the Unix epoch).
    #[schema(example = "30s")]
    pub every: Option<String>,
    /// A cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6 with
    /// seconds first.
    #[schema(example = "30 2 * * *")]
    pub cron: Option<String>,
    /// IANA time zone of `cron` (default `UTC`).
    #[schema(example = "Europe/Paris")]
    pub timezone: Option<String>,
    /// After downtime: `once` runs the latest missed occurrence once; `skip` drops them.
    #[serde(default)]
    pub misfire: Misfire,
    #[serde(default)]
    pub options: ScheduleOptions,
}

/// A schedule, with what the beats did with it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    #[schema(example = "nightly-report")]
    pub name: String,
    pub task: String,
    pub args: Value,
    pub queue: Option<String>,
    pub every: Option<String>,
    pub cron: Option<String>,
    /// The time zone of a cron schedule; null for intervals.
    pub timezone: Option<String>,
    pub misfire: Misfire,
    pub options: ScheduleOptions,
    /// `settings` (only the file changes it) or `api`.
    pub source: ScheduleSource,
    pub paused: bool,
    /// The next occurrence; null while paused.
    pub next_run: Option<chrono::DateTime<chrono::Utc>>,
    /// When the last run was enqueued.
    pub last_run: Option<chrono::DateTime<chrono::Utc>>,
    pub last_task_id: Option<String>,
}

impl ScheduleView {
    fn new(entry: ScheduleEntry, now: i64) -> Self {
        let next_run = entry.next_run_ms(now).and_then(to_datetime);
        let def = entry.def;
        let timezone = def.cron.as_ref().map(|_| def.timezone.clone().unwrap_or_else(|| "UTC".into()));
        Self {
            name: def.name,
            task: def.task,
            args: def.args,
            queue: def.queue,
            every: def.every,
            cron: def.cron,
            timezone,
            misfire: def.misfire,
            options: def.options,
            source: entry.source,
            paused: entry.state.paused,
            next_run,
            last_run: entry.state.last_run_ms.and_then(to_datetime),
            last_task_id: entry.state.last_task_id.map(|id| id.to_string()),
        }
    }
}

/// Every schedule.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

/// Every schedule, sorted by name.
#[utoipa::path(get, path = "/schedules", tag = "schedules",
    responses(
        (status = 200, description = "The schedules", body = ScheduleList),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn list_schedules(State(state): State<AppState>, scope: Scope) -> Result<Json<ScheduleList>, ApiError> {
    let now = state.broker.clock().now_ms();
    let mut schedules = Vec::new();
    for entry in state.broker.schedules().await? {
        if in_scope(&state, &scope, &entry.def.task, entry.def.queue.as_deref()).await {
            schedules.push(ScheduleView::new(entry, now));
        }
    }
    Ok(Json(ScheduleList { schedules }))
}

/// One schedule.
#[utoipa::path(get, path = "/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn get_schedule(State(state): State<AppState>, scope: Scope, Path(name): Path<String>) -> Result<Json<ScheduleView>, ApiError> {
    check_schedule(&state, &scope, &name).await?;
    Ok(Json(view(&state, &name).await?))
}

/// Create or replace a schedule. A new or changed schedule fires only occurrences after now.
#[utoipa::path(put, path = "/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name: 1 to 128 of A-Z a-z 0-9 _ . -")),
    request_body = ScheduleRequest,
    responses(
        (status = 201, description = "Created", body = ScheduleView, headers(("Location" = String, description = "The schedule's URL"))),
        (status = 200, description = "Replaced (or unchanged)", body = ScheduleView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "Defined in the settings file; change it there", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Unknown task, or a field missing or invalid (bad cron expression, unknown time zone...)", body = ErrorBody),
        (status = 503, description = "Redis is unreachable; nothing was stored", body = ErrorBody),
    ))]
pub async fn put_schedule(
    State(state): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<ScheduleRequest>,
) -> Result<Response, ApiError> {
    validate_name(&name).map_err(|m| ApiError::invalid("name", m))?;
    if state.broker.schedule(&name).await?.is_some() {
        check_schedule(&state, &scope, &name).await?;
    }
    let def = ScheduleDef {
        name: name.clone(),
        task: request.task,
        args: request.args,
        queue: request.queue,
        every: request.every,
        cron: request.cron,
        timezone: request.timezone,
        misfire: request.misfire,
        options: request.options,
    };
    let mut schedule = Schedule::parse(def).map_err(|e| ApiError::invalid(e.field, e.message))?;
    // Checked as its firings will be (the one enqueue path), and its queue resolved once, so
    // every beat and the gateway fire it on one queue.
    let now = state.broker.clock().now_ms();
    let task = state
        .catalog
        .prepare(&state.broker, &schedule.def.task, &schedule.def.args, &schedule.call(), now)
        .await
        .map_err(|e| match e {
            CallError::Invalid(e) if TaskOptions::FIELDS.contains(&e.field.as_str()) || e.field == "expires" => {
                ApiError::invalid(format!("options.{}", e.field), e.message)
            }
            other => other.into(),
        })?;
    scope.check(task.id.queue().as_str(), &schedule.def.task)?;
    schedule.def.queue = Some(task.id.queue().to_string());

    let status = match state.broker.put_schedule(&schedule.def, ScheduleSource::Api).await? {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Replaced | PutOutcome::Unchanged => StatusCode::OK,
        PutOutcome::Refused => return Err(from_settings(&name)),
    };
    let body = Json(view(&state, &name).await?);
    let location = HeaderValue::from_str(&format!("/schedules/{name}")).expect("names are header-safe");
    Ok((status, [(header::LOCATION, location)], body).into_response())
}

/// Delete a schedule made through the API.
#[utoipa::path(delete, path = "/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses(
        (status = 204, description = "Deleted; it fires no more"),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 409, description = "Defined in the settings file; remove it there", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn delete_schedule(State(state): State<AppState>, scope: Scope, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    check_schedule(&state, &scope, &name).await?;
    match state.broker.delete_schedule(&name, ScheduleSource::Api).await? {
        DeleteOutcome::Deleted => Ok(StatusCode::NO_CONTENT),
        DeleteOutcome::Missing => Err(not_found(&name)),
        DeleteOutcome::Refused => Err(from_settings(&name)),
    }
}

/// Pause a schedule: its occurrences are not fired (nor caught up after resuming).
#[utoipa::path(post, path = "/schedules/{name}/pause", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses(
        (status = 200, description = "Paused", body = ScheduleView),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn pause_schedule(State(state): State<AppState>, scope: Scope, Path(name): Path<String>) -> Result<Json<ScheduleView>, ApiError> {
    check_schedule(&state, &scope, &name).await?;
    set_paused(&state, &name, true).await
}

/// Resume a paused schedule from its next occurrence.
#[utoipa::path(post, path = "/schedules/{name}/resume", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses(
        (status = 200, description = "Resumed", body = ScheduleView),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn resume_schedule(
    State(state): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    check_schedule(&state, &scope, &name).await?;
    set_paused(&state, &name, false).await
}

/// Fire the schedule's task now (also while paused), as `POST /tasks` would enqueue it.
#[utoipa::path(post, path = "/schedules/{name}/run", tag = "schedules",
    params(
        ("name" = String, Path, description = "Schedule name"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]{1,200}$", description = "Repeats with the same key within 24 h return the first task"),
    ),
    responses(
        (status = 202, description = "Stored and queued", body = Accepted, headers(("Location" = String, description = "The task's status URL"))),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 422, description = "The schedule's task is no longer known", body = ErrorBody),
        (status = 429, description = "The queue is full", body = ErrorBody),
        (status = 503, description = "Redis is unreachable; nothing was stored", body = ErrorBody),
    ))]
pub async fn run_schedule(
    State(state): State<AppState>,
    scope: Scope,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let entry = state.broker.schedule(&name).await?.ok_or_else(|| not_found(&name))?;
    let schedule =
        Schedule::parse(entry.def).map_err(|e| ApiError::Internal(format!("stored schedule {name}: {}: {}", e.field, e.message)))?;
    let call = schedule.call();
    let def = schedule.def;
    let done = enqueue_task(&state, &headers, &scope, &def.task, def.args, call).await?;
    let run = FiredRun {
        occurrence_ms: None,
        task_id: done.id.clone(),
    };
    state.broker.record_schedule(&name, None, Some(&run)).await?;
    Ok(accepted(&done))
}

async fn set_paused(state: &AppState, name: &str, paused: bool) -> Result<Json<ScheduleView>, ApiError> {
    if !state.broker.set_schedule_paused(name, paused).await? {
        return Err(not_found(name));
    }
    Ok(Json(view(state, name).await?))
}

/// Whether a schedule of `task` on `queue` (its route when it names none) is in `scope`.
async fn in_scope(state: &AppState, scope: &Scope, task: &str, queue: Option<&str>) -> bool {
    if scope.is_unlimited() {
        return true;
    }
    let queue = match queue {
        Some(q) => q.to_owned(),
        None => state.catalog.route_name(&state.broker, task).await.to_string(),
    };
    scope.allows(&queue, task)
}

/// `403` unless the existing schedule `name` is in `scope` (a missing one is left to the
/// route's 404).
async fn check_schedule(state: &AppState, scope: &Scope, name: &str) -> Result<(), ApiError> {
    if let Some(entry) = state.broker.schedule(name).await?
        && !in_scope(state, scope, &entry.def.task, entry.def.queue.as_deref()).await
    {
        return Err(ApiError::Forbidden(format!("this token may not use schedule {name}")));
    }
    Ok(())
}

async fn view(state: &AppState, name: &str) -> Result<ScheduleView, ApiError> {
    let entry = state.broker.schedule(name).await?.ok_or_else(|| not_found(name))?;
    Ok(ScheduleView::new(entry, state.broker.clock().now_ms()))
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("no schedule {name:?}"))
}

fn from_settings(name: &str) -> ApiError {
    ApiError::Conflict(format!(
        "schedule {name:?} is defined in the settings file; change or remove it there"
    ))
}
