//! `POST /tasks` (enqueue any registered task) and `GET /tasks/{id}` (its record, with an
//! optional long poll).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use celeriac::{TaskId, TaskRecord};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::enqueue::{Accepted, TaskRequest, enqueue};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Enqueue any registered task.
#[utoipa::path(post, path = "/tasks", tag = "tasks",
    request_body = TaskRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeats with the same key within 24 h return the first task")),
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
    headers: HeaderMap,
    ApiJson(request): ApiJson<TaskRequest>,
) -> Result<Response, ApiError> {
    let (task, args, options) = request.split();
    enqueue(&state, &headers, &task, args, options).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Wait up to this many seconds (at most 60) for the task to finish before answering.
    pub wait: Option<f64>,
}

/// A task's record: state, progress, result or error.
#[utoipa::path(get, path = "/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id"), WaitQuery),
    responses(
        (status = 200, description = "The task", body = TaskRecord),
        (status = 404, description = "No such task, or its record expired", body = ErrorBody),
        (status = 422, description = "Invalid wait", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn get_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TaskRecord>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::invalid("wait", "must be a number of seconds"))?;
    let id = TaskId::parse(&id).ok_or_else(|| not_found(&id))?;
    let max_wait = state.settings.http.max_wait_secs as f64;
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
    record.map(Json).ok_or_else(|| not_found(&id.to_string()))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no task {id:?}: it never existed or its record expired"))
}
