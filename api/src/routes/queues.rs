//! Queues for operators: `GET /queues` (depths, counters, the last hour of throughput),
//! pause and resume, purge the pending list, and the dead letters of a queue.

use axum::Json;
use axum::extract::{Path, State};
use celeriac::TaskRecord;
use celeriac::broker::{LimitsSource, QueueLimits, QueueOverview};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, parse_limit, parse_queue};
use crate::scope::Scope;
use crate::state::AppState;

/// Every queue of the namespace.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QueueList {
    pub queues: Vec<QueueOverview>,
}

/// The answer to a purge.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Purged {
    /// Pending tasks removed (each is now `REVOKED`, reason `Purged`).
    pub removed: usize,
}

/// A queue's dead letters, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetters {
    pub tasks: Vec<TaskRecord>,
}

/// A queue's new number of shards.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetShards {
    /// 1 to 256, and at least the number it has (shards are added, never removed: the tasks
    /// of a removed one would be left unread).
    pub shards: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// How many (1 to 200, default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
}

/// Depths, counters and throughput of every queue, read in O(queues + workers) commands.
#[utoipa::path(get, path = "/queues", tag = "queues",
    responses(
        (status = 200, description = "Every queue, by name", body = QueueList),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn list_queues(State(state): State<AppState>, scope: Scope) -> Result<Json<QueueList>, ApiError> {
    let mut queues = state.broker.queue_overviews().await?;
    queues.retain(|q| scope.allows_queue(&q.name));
    Ok(Json(QueueList { queues }))
}

/// Pause a queue: workers take nothing from it until it is resumed (running tasks go on).
#[utoipa::path(post, path = "/queues/{queue}/pause", tag = "queues",
    params(("queue" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$", description = "Queue name")),
    responses(
        (status = 200, description = "The queue, paused", body = QueueOverview),
        (status = 422, description = "Invalid queue name", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn pause_queue(State(state): State<AppState>, scope: Scope, Path(queue): Path<String>) -> Result<Json<QueueOverview>, ApiError> {
    scope.check_queue(&queue)?;
    set_paused(&state, &queue, true).await
}

/// Resume a paused queue.
#[utoipa::path(post, path = "/queues/{queue}/resume", tag = "queues",
    params(("queue" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$", description = "Queue name")),
    responses(
        (status = 200, description = "The queue, running", body = QueueOverview),
        (status = 422, description = "Invalid queue name", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn resume_queue(State(state): State<AppState>, scope: Scope, Path(queue): Path<String>) -> Result<Json<QueueOverview>, ApiError> {
    scope.check_queue(&queue)?;
    set_paused(&state, &queue, false).await
}

async fn set_paused(state: &AppState, queue: &str, paused: bool) -> Result<Json<QueueOverview>, ApiError> {
    let queue = parse_queue(queue)?;
    state.broker.set_paused(&queue, paused).await?;
    Ok(Json(state.broker.queue_overview(&queue).await?))
}

/// Spread a queue over more shards: each is a queue of its own in Redis (its own hash tag, so
/// a Cluster places them on different nodes); new tasks go to them in turn (or by their
/// `partition_key`), workers consume them all within a few seconds, and the queue is still
/// shown, paused and purged as one.
#[utoipa::path(put, path = "/queues/{queue}/shards", tag = "queues",
    params(("queue" = String, Path, description = "Queue name")),
    request_body = SetShards,
    responses(
        (status = 200, description = "The queue, with its shards", body = QueueOverview),
        (status = 422, description = "Invalid queue name, or a number of shards out of range or lower than now", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn set_shards(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    crate::extract::ApiJson(body): crate::extract::ApiJson<SetShards>,
) -> Result<Json<QueueOverview>, ApiError> {
    let queue = parse_whole_queue(&queue)?;
    let max = celeriac::id::MAX_SHARDS;
    if !(1..=max).contains(&body.shards) {
        return Err(ApiError::invalid("shards", format!("must be from 1 to {max}")));
    }
    let now = state.broker.raise_shards(&queue, body.shards).await?;
    if now > body.shards {
        return Err(ApiError::invalid(
            "shards",
            format!("the queue has {now} shards; shards can be added, never removed"),
        ));
    }
    Ok(Json(state.broker.queue_overview(&queue).await?))
}

/// Set a queue's rate limit and concurrency cap (each optional; a body with neither clears
/// them). Enforced across all workers in the script that hands tasks out: a held-back task
/// waits in Redis and goes out as soon as a token or a slot is free. Limits set here stay
/// until changed or deleted here: a process's settings (`[tasks.limits]`) never replace them.
/// A sharded queue's shards each get a share.
#[utoipa::path(put, path = "/queues/{queue}/limits", tag = "queues",
    params(("queue" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$", description = "Queue name")),
    request_body = QueueLimits,
    responses(
        (status = 200, description = "The queue, with its limits", body = QueueOverview),
        (status = 422, description = "Invalid queue name, or a malformed rate (`100/fortnight`), burst or cap; the field is named", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn set_limits(
    State(state): State<AppState>,
    scope: Scope,
    Path(queue): Path<String>,
    crate::extract::ApiJson(body): crate::extract::ApiJson<QueueLimits>,
) -> Result<Json<QueueOverview>, ApiError> {
    scope.check_queue(&queue)?;
    let queue = parse_whole_queue(&queue)?;
    body.validate().map_err(|e| ApiError::invalid(e.field, e.message))?;
    if body.is_empty() {
        state.broker.clear_limits(&queue).await?;
    } else {
        state.broker.set_limits(&queue, &body, LimitsSource::Api).await?;
    }
    Ok(Json(state.broker.queue_overview(&queue).await?))
}

/// Remove a queue's rate limit and concurrency cap: its tasks go out as fast as workers take
/// them (until a process with limits in its settings starts).
#[utoipa::path(delete, path = "/queues/{queue}/limits", tag = "queues",
    params(("queue" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$", description = "Queue name")),
    responses(
        (status = 200, description = "The queue, without limits", body = QueueOverview),
        (status = 422, description = "Invalid queue name", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn delete_limits(
    State(state): State<AppState>,
    scope: Scope,
    Path(queue): Path<String>,
) -> Result<Json<QueueOverview>, ApiError> {
    scope.check_queue(&queue)?;
    let queue = parse_whole_queue(&queue)?;
    state.broker.clear_limits(&queue).await?;
    Ok(Json(state.broker.queue_overview(&queue).await?))
}

/// A queue's name, not one of its shards' (settings that span the shards name the queue).
pub(crate) fn parse_whole_queue(queue: &str) -> Result<celeriac::QueueName, ApiError> {
    let queue = parse_queue(queue)?;
    if queue.is_shard() {
        return Err(ApiError::invalid("queue", "name a queue, not one of its shards"));
    }
    Ok(queue)
}

/// Purge a queue's pending tasks: each becomes `REVOKED` (reason `Purged`) and never runs.
/// Scheduled, running and retrying tasks are left alone. An unknown queue removes nothing.
#[utoipa::path(delete, path = "/queues/{queue}/pending", tag = "queues",
    params(("queue" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$", description = "Queue name")),
    responses(
        (status = 200, description = "How many were removed", body = Purged),
        (status = 422, description = "Invalid queue name", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn purge_queue(State(state): State<AppState>, scope: Scope, Path(queue): Path<String>) -> Result<Json<Purged>, ApiError> {
    scope.check_queue(&queue)?;
    let queue = parse_queue(&queue)?;
    Ok(Json(Purged {
        removed: state.broker.purge(&queue).await?,
    }))
}

/// A queue's dead letters (tasks that failed for good), newest first, with their records.
#[utoipa::path(get, path = "/queues/{queue}/dead", tag = "queues",
    params(("queue" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$", description = "Queue name"), DeadQuery),
    responses(
        (status = 200, description = "Dead letters, newest first", body = DeadLetters),
        (status = 422, description = "Invalid queue name or limit", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn dead_letters(
    State(state): State<AppState>,
    scope: Scope,
    Path(queue): Path<String>,
    ApiQuery(query): ApiQuery<DeadQuery>,
) -> Result<Json<DeadLetters>, ApiError> {
    scope.check_queue(&queue)?;
    let queue = parse_queue(&queue)?;
    let limit = parse_limit(query.limit.as_deref())?;
    Ok(Json(DeadLetters {
        tasks: state.broker.dead_letters(&queue, limit).await?,
    }))
}
