//! Remote task types through the admin API: `PUT /task-types/{name}` declares (or replaces) a
//! task whose code is an HTTP endpoint, `GET /task-types` and `/task-types/{name}` read them
//! (never their secret), `DELETE` removes one. They are stored in Redis, where workers read
//! them (`celeriac::remote`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use celeriac::TaskOptions;
use celeriac::remote::RemoteTaskType;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// A remote task type as sent to `PUT /task-types/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskTypeRequest {
    /// Where each run is `POST`ed (`http://` or `https://`; an `https://` endpoint's
    /// certificate must come from the web roots or the workers' `[worker] remote_ca_file`).
    #[schema(example = "http://127.0.0.1:8080/tasks/resize")]
    pub url: String,
    /// The queue its tasks go to (default `default`).
    pub queue: Option<String>,
    /// Seconds one call may last (default 30, at most 3600).
    pub timeout: Option<f64>,
    /// The key of the `Celeriac-Signature` HMAC (16 to 512 characters).
    pub secret: String,
    /// Largest answer body read, in bytes (default 1048576).
    pub max_answer_bytes: Option<usize>,
    /// Retry policy and time limits of its tasks.
    #[serde(default)]
    pub options: TaskOptions,
}

/// A remote task type as the API shows it (without its secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskTypeView {
    pub name: String,
    pub queue: String,
    pub url: String,
    pub timeout: f64,
    pub max_answer_bytes: usize,
    pub options: TaskOptions,
}

/// Every remote task type.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskTypeList {
    pub task_types: Vec<TaskTypeView>,
}

impl From<RemoteTaskType> for TaskTypeView {
    fn from(t: RemoteTaskType) -> Self {
        Self {
            name: t.name,
            queue: t.queue,
            url: t.url,
            timeout: t.timeout,
            max_answer_bytes: t.max_answer_bytes,
            options: t.options,
        }
    }
}

/// Declare or replace a remote task type.
#[utoipa::path(put, path = "/task-types/{name}", tag = "task-types",
    params(("name" = String, Path, description = "Task name (letters, digits, '_', '-', '.')")),
    request_body = TaskTypeRequest,
    responses(
        (status = 200, description = "Replaced", body = TaskTypeView),
        (status = 201, description = "Created", body = TaskTypeView),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field missing or invalid", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn put_task_type(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<TaskTypeRequest>,
) -> Result<(StatusCode, Json<TaskTypeView>), ApiError> {
    let ty = RemoteTaskType {
        name,
        queue: request.queue.unwrap_or_else(|| "default".into()),
        url: request.url,
        timeout: request.timeout.unwrap_or(celeriac::remote::DEFAULT_TIMEOUT_SECS),
        secret: request.secret,
        max_answer_bytes: request.max_answer_bytes.unwrap_or(celeriac::remote::DEFAULT_MAX_ANSWER_BYTES),
        options: request.options,
    };
    ty.validate().map_err(|(field, message)| ApiError::invalid(field, message))?;
    let created = state.broker.put_task_type(&ty).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ty.into())))
}

/// Every remote task type (without secrets).
#[utoipa::path(get, path = "/task-types", tag = "task-types",
    responses(
        (status = 200, description = "Every remote task type, by name", body = TaskTypeList),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn list_task_types(State(state): State<AppState>) -> Result<Json<TaskTypeList>, ApiError> {
    let task_types = state.broker.task_types().await?.into_iter().map(Into::into).collect();
    Ok(Json(TaskTypeList { task_types }))
}

/// One remote task type (without its secret).
#[utoipa::path(get, path = "/task-types/{name}", tag = "task-types",
    params(("name" = String, Path, description = "Task name")),
    responses(
        (status = 200, description = "The task type", body = TaskTypeView),
        (status = 404, description = "No such remote task type", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn get_task_type(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<TaskTypeView>, ApiError> {
    match state.broker.task_type(&name).await? {
        Some(ty) => Ok(Json(ty.into())),
        None => Err(ApiError::NotFound(format!("no remote task type named {name:?}"))),
    }
}

/// Remove a remote task type; its pending tasks then fail as `NotRegistered` when run.
#[utoipa::path(delete, path = "/task-types/{name}", tag = "task-types",
    params(("name" = String, Path, description = "Task name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such remote task type", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn delete_task_type(State(state): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    if state.broker.delete_task_type(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no remote task type named {name:?}")))
    }
}
