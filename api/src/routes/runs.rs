//! The pull protocol over HTTP, for workers in any language that the gateway cannot reach:
//! `POST /queues/{queue}/claim` (long poll) hands out tasks, each with a run token; with that
//! token, `POST /runs/{token}/heartbeat`, `/progress`, `/complete` and `/fail`. A token whose
//! run lost its task (its lease expired and the task went back, or a newer run owns it) is
//! refused with `409`; a token that is not genuine with `404`. The logic is in `crate::pull`.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use celeriac::{Progress, TaskError, TaskOptions};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, OptionalJson, parse_queue};
use crate::pull;
use crate::scope::Scope;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClaimQuery {
    /// Most tasks to take (default 1; at most the gateway's `pull.max_claim`, 100 unless set,
    /// never above 1000).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub max: Option<String>,
    /// Seconds to wait for a task when the queue is empty (0 to the gateway's longest wait,
    /// default 0: answer at once).
    #[param(value_type = Option<f64>, minimum = 0)]
    pub wait: Option<String>,
    /// The pull worker's id (1 to 64 letters, digits, `-`, `_`, `.`): its lease, its entry in
    /// `GET /workers`. Reuse it across claims; without it the gateway makes one and answers it.
    #[param(value_type = Option<String>, pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub worker: Option<String>,
}

/// Tasks handed to a pull worker.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Claimed {
    /// The worker id the tasks are leased to (the one sent, or a new one).
    pub worker: String,
    /// How long the lease lasts without a heartbeat, in seconds.
    pub lease_seconds: f64,
    /// The tasks taken, oldest first; empty when none came within the wait.
    pub tasks: Vec<ClaimedTask>,
}

/// One task to run, with the token of this run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClaimedTask {
    #[schema(example = "images-031ncPED5QTGLrz5ivqvoB")]
    pub id: String,
    /// The task name.
    pub task: String,
    pub queue: String,
    /// The task's arguments, as enqueued.
    pub args: Value,
    /// 1 for the first attempt; each retry adds one.
    pub attempt: u32,
    /// Which delivery this run is (crash redeliveries count too).
    pub delivery: u32,
    /// The task's options (retry policy, time limits).
    pub options: TaskOptions,
    /// The run token for `/runs/{token}/...`.
    pub token: String,
    /// When the hard time limit ends the run, if it has one.
    pub deadline: Option<chrono::DateTime<chrono::Utc>>,
}

/// The answer to a heartbeat or a progress report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunAlive {
    /// The lease now lasts this many seconds more.
    pub lease_seconds: f64,
}

/// The body of `POST /runs/{token}/complete`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// The task's result (any JSON; `null` when absent).
    #[serde(default)]
    pub result: Value,
}

/// The body of `POST /runs/{token}/fail`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    /// What went wrong, for humans.
    pub message: String,
    /// Whether another attempt could succeed (default `true`): a retryable failure retries
    /// under the task's retry policy.
    #[serde(default = "yes")]
    pub retryable: bool,
    /// A short class of the failure (default `Error`).
    #[serde(default)]
    pub kind: Option<String>,
}

fn yes() -> bool {
    true
}

/// What became of a run that ended.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RunEnded {
    /// `SUCCESS`, `RETRY` (it runs again after its backoff) or `FAILURE`.
    #[schema(example = "SUCCESS")]
    pub state: String,
}

/// Longest message kept from a pull worker's failure.
const MAX_MESSAGE: usize = 4096;

/// Claim tasks of a queue for a worker over HTTP (long poll). Each comes with a run token
/// bound to the worker's lease on the queue: heartbeat before the lease runs out, or the task
/// goes back to the queue and the token is refused.
#[utoipa::path(post, path = "/queues/{queue}/claim", tag = "pull",
    params(("queue" = String, Path, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$", description = "Queue name"), ClaimQuery),
    responses(
        (status = 200, description = "The tasks taken (maybe none)", body = Claimed),
        (status = 422, description = "Invalid queue, max, wait or worker", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn claim(
    State(state): State<AppState>,
    scope: Scope,
    Path(queue): Path<String>,
    ApiQuery(query): ApiQuery<ClaimQuery>,
) -> Result<Json<Claimed>, ApiError> {
    scope.check_queue(&queue)?;
    let queue = parse_queue(&queue)?;
    let most = state.settings.pull.max_claim;
    let max = match query.max.as_deref() {
        None => 1,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=most).contains(n))
            .ok_or_else(|| ApiError::invalid("max", format!("must be a whole number from 1 to {most}")))?,
    };
    let max_wait = state.settings.http.max_wait.as_secs_f64();
    let wait = match query.wait.as_deref() {
        None => Duration::ZERO,
        Some(raw) => raw
            .parse::<f64>()
            .ok()
            .filter(|w| w.is_finite() && (0.0..=max_wait).contains(w))
            .map(Duration::from_secs_f64)
            .ok_or_else(|| ApiError::invalid("wait", format!("must be from 0 to {max_wait} seconds")))?,
    };
    let worker = match query.worker {
        Some(id) => valid_worker_id(id)?,
        None => format!("pull-{:016x}", fastrand::u64(..)),
    };
    let runs = pull::claim(&state, &queue, &worker, max, wait).await?;
    let tasks = runs
        .into_iter()
        .map(|run| {
            let d = run.delivery;
            ClaimedTask {
                id: d.id.to_string(),
                task: d.name,
                queue: queue.to_string(),
                args: serde_json::from_str(&d.args).unwrap_or(Value::Null),
                attempt: d.retries + 1,
                delivery: d.delivery,
                options: d.options,
                token: run.token,
                deadline: run.deadline_ms.and_then(chrono::DateTime::from_timestamp_millis),
            }
        })
        .collect();
    Ok(Json(Claimed {
        worker,
        lease_seconds: state.settings.pull.lease.as_secs_f64(),
        tasks,
    }))
}

fn valid_worker_id(id: String) -> Result<String, ApiError> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if (1..=64).contains(&id.len()) && id.bytes().all(ok) {
        Ok(id)
    } else {
        Err(ApiError::invalid("worker", "must be 1 to 64 letters, digits, '-', '_' or '.'"))
    }
}

/// Keep a run's lease alive (every third of `lease_seconds` is a good pace).
#[utoipa::path(post, path = "/runs/{token}/heartbeat", tag = "pull",
    params(("token" = String, Path, description = "The run token from the claim")),
    responses(
        (status = 200, description = "The lease was extended", body = RunAlive),
        (status = 404, description = "Not a valid run token", body = ErrorBody),
        (status = 409, description = "The run no longer holds its task (lease lost, newer run, or time limit passed)", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn heartbeat(State(state): State<AppState>, Path(token): Path<String>) -> Result<Json<RunAlive>, ApiError> {
    let run = pull::holding_run(&state, &token).await?;
    pull::heartbeat(&state, &run).await?;
    Ok(Json(RunAlive {
        lease_seconds: state.settings.pull.lease.as_secs_f64(),
    }))
}

/// Report a run's progress. Open to anyone holding the token (a remote task's endpoint gets
/// it as `progress_url`, without a bearer token): the signed token is the permission.
#[utoipa::path(post, path = "/runs/{token}/progress", tag = "pull",
    params(("token" = String, Path, description = "The run token")),
    request_body = Progress,
    responses(
        (status = 200, description = "Recorded", body = RunAlive),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Not a valid run token", body = ErrorBody),
        (status = 409, description = "The run no longer holds its task", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field missing or invalid", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn progress(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ApiJson(progress): ApiJson<Progress>,
) -> Result<Json<RunAlive>, ApiError> {
    if progress.current > progress.total {
        return Err(ApiError::invalid("current", "must not exceed total"));
    }
    let run = pull::holding_run(&state, &token).await?;
    pull::progress(&state, &run, &progress).await?;
    Ok(Json(RunAlive {
        lease_seconds: state.settings.pull.lease.as_secs_f64(),
    }))
}

/// End a run with `SUCCESS` and its result; a result over `tasks.max_result_bytes` ends it in
/// `FAILURE` (kind `ResultTooLarge`), as it would a native worker's run.
#[utoipa::path(post, path = "/runs/{token}/complete", tag = "pull",
    params(("token" = String, Path, description = "The run token")),
    request_body = CompleteRequest,
    responses(
        (status = 200, description = "Stored: SUCCESS, or FAILURE for a result over the limit", body = RunEnded),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Not a valid run token", body = ErrorBody),
        (status = 409, description = "The run no longer holds its task; nothing was stored", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field invalid", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn complete(
    State(state): State<AppState>,
    Path(token): Path<String>,
    OptionalJson(body): OptionalJson<CompleteRequest>,
) -> Result<Json<RunEnded>, ApiError> {
    let run = pull::holding_run(&state, &token).await?;
    let result = serde_json::to_string(&body.result).expect("a JSON value serializes");
    let ended = pull::complete(&state, &run, result).await?;
    Ok(Json(RunEnded { state: ended.into() }))
}

/// End a run with an error: it retries under the task's retry policy when `retryable`, else
/// it fails for good (`FAILURE`, in the dead letters).
#[utoipa::path(post, path = "/runs/{token}/fail", tag = "pull",
    params(("token" = String, Path, description = "The run token")),
    request_body = FailRequest,
    responses(
        (status = 200, description = "Stored: RETRY or FAILURE", body = RunEnded),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Not a valid run token", body = ErrorBody),
        (status = 409, description = "The run no longer holds its task; nothing was stored", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field missing or invalid", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn fail(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ApiJson(body): ApiJson<FailRequest>,
) -> Result<Json<RunEnded>, ApiError> {
    let kind = body.kind.unwrap_or_else(|| "Error".into());
    if kind.is_empty() || kind.len() > 100 {
        return Err(ApiError::invalid("kind", "must be 1 to 100 characters"));
    }
    let mut message = body.message;
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    let error = TaskError {
        kind,
        message,
        retryable: body.retryable,
        retry_after: None,
    };
    let run = pull::holding_run(&state, &token).await?;
    let ended = pull::fail(&state, &run, error).await?;
    Ok(Json(RunEnded { state: ended.into() }))
}
