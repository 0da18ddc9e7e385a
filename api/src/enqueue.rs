//! Enqueue, shared by `POST /tasks`, `POST /emails` and `POST /reports/{user_id}`: check the
//! task name, arguments and options, honour `Idempotency-Key` and queue limits, store the task
//! in one atomic step (with the request's W3C `traceparent`, when valid, for the run to
//! continue), and answer `202` with the id and a `Location` to poll.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use celeriac::broker::{EnqueueOutcome, Idempotency, NewTask};
use celeriac::trace::TraceParent;
use celeriac::{QueueName, TaskId, TaskOptions, TaskState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// How long an idempotency key is remembered.
const IDEMPOTENCY_TTL_SECS: u64 = 24 * 3600;
/// Longest countdown, eta or expiry accepted, from now.
const MAX_DELAY_SECS: f64 = 366.0 * 86_400.0;

/// Per-call options: where and when the task runs, and how it may fail.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallOptions {
    /// Queue to use instead of the task's route.
    pub queue: Option<String>,
    /// Run no sooner than this many seconds from now.
    pub countdown: Option<f64>,
    /// Run no sooner than this time (RFC 3339).
    #[schema(example = "2026-11-24T21:00:00Z")]
    pub eta: Option<String>,
    /// Do not start after this: seconds from now, or an RFC 3339 time. An expired task is
    /// `REVOKED` and never runs.
    #[schema(value_type = Option<Object>)]
    pub expires: Option<Value>,
    pub max_retries: Option<u32>,
    /// Hard time limit, seconds.
    pub time_limit: Option<f64>,
    /// Soft time limit, seconds.
    pub soft_time_limit: Option<f64>,
    /// Delay before the first retry, seconds.
    pub retry_delay: Option<f64>,
    /// Double the delay at every retry (default true).
    pub retry_backoff: Option<bool>,
    /// Ceiling of the retry delay, seconds.
    pub retry_delay_max: Option<f64>,
    /// Spread retries between half and all of the delay (default true).
    pub retry_jitter: Option<bool>,
}

/// `POST /tasks`: any registered task, with its options at the top level.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// A registered task name, e.g. `add`.
    #[schema(example = "add")]
    pub task: String,
    /// The task's arguments (any JSON).
    #[serde(default)]
    #[schema(value_type = Object, example = json!([2, 2]))]
    pub args: Value,
    pub queue: Option<String>,
    pub countdown: Option<f64>,
    pub eta: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub expires: Option<Value>,
    pub max_retries: Option<u32>,
    pub time_limit: Option<f64>,
    pub soft_time_limit: Option<f64>,
    pub retry_delay: Option<f64>,
    pub retry_backoff: Option<bool>,
    pub retry_delay_max: Option<f64>,
    pub retry_jitter: Option<bool>,
}

impl TaskRequest {
    pub fn split(self) -> (String, Value, CallOptions) {
        let options = CallOptions {
            queue: self.queue,
            countdown: self.countdown,
            eta: self.eta,
            expires: self.expires,
            max_retries: self.max_retries,
            time_limit: self.time_limit,
            soft_time_limit: self.soft_time_limit,
            retry_delay: self.retry_delay,
            retry_backoff: self.retry_backoff,
            retry_delay_max: self.retry_delay_max,
            retry_jitter: self.retry_jitter,
        };
        (self.task, self.args, options)
    }
}

/// The answer to every accepted enqueue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    #[schema(example = "emails-0193a1b2c3d4e5f60718293a4b5c6d7e")]
    pub task_id: String,
    pub state: TaskState,
    pub queue: String,
    /// Where to poll the task: `GET` it.
    #[schema(example = "/tasks/emails-0193a1b2c3d4e5f60718293a4b5c6d7e")]
    pub status_url: String,
}

/// Validates and stores one task; the `202` response or the error.
pub async fn enqueue(state: &AppState, headers: &HeaderMap, task: &str, args: Value, options: CallOptions) -> Result<Response, ApiError> {
    let (id, state_now) = enqueue_task(state, headers, task, args, options).await?;
    Ok(accepted(&id, state_now))
}

/// Validates and stores one task; its id and state (the first task's, for a replayed
/// `Idempotency-Key`).
pub async fn enqueue_task(
    state: &AppState,
    headers: &HeaderMap,
    task: &str,
    args: Value,
    options: CallOptions,
) -> Result<(TaskId, TaskState), ApiError> {
    let spec = state
        .catalog
        .lookup(&state.broker, task)
        .await
        .map_err(|known| ApiError::UnknownTask {
            name: task.to_owned(),
            known,
        })?;
    celeriac::builtin::validate_args(task, &args).map_err(|e| ApiError::invalid(e.field, e.message))?;
    let queue = match &options.queue {
        Some(q) => QueueName::parse(q).map_err(|m| ApiError::invalid("queue", m))?,
        None => state.catalog.route(&spec),
    };
    let call = TaskOptions {
        max_retries: options.max_retries,
        time_limit: options.time_limit,
        soft_time_limit: options.soft_time_limit,
        retry_delay: options.retry_delay,
        retry_backoff: options.retry_backoff,
        retry_delay_max: options.retry_delay_max,
        retry_jitter: options.retry_jitter,
    };
    call.validate().map_err(|(field, message)| ApiError::invalid(field, message))?;
    let now = state.broker.clock().now_ms();
    let due_ms = due_time(&options, now)?;
    let expires_ms = options.expires.as_ref().map(|e| expiry_time(e, now)).transpose()?;
    let idempotency = idempotency(headers, || {
        serde_json::json!({ "task": task, "args": args, "queue": queue.as_str(), "options": options }).to_string()
    })?;

    let mut new = NewTask::new(&queue, task, &args);
    new.options = call.or(&spec.options);
    new.due_ms = due_ms;
    new.expires_ms = expires_ms;
    new.traceparent = traceparent(headers);
    let max_pending = state.settings.tasks.max_pending.get(&queue).copied().unwrap_or(0);
    let outcome = state
        .broker
        .enqueue(&queue, std::slice::from_ref(&new), max_pending, idempotency.as_ref())
        .await?;
    let (id, state_now) = match outcome {
        EnqueueOutcome::Stored => (
            new.id,
            if due_ms.is_some_and(|d| d > now) {
                TaskState::Scheduled
            } else {
                TaskState::Pending
            },
        ),
        EnqueueOutcome::Replayed {
            task_id,
            same_request: true,
        } => {
            let current = state.broker.get(&task_id).await?.map(|r| r.state).unwrap_or(TaskState::Pending);
            (task_id, current)
        }
        EnqueueOutcome::Replayed {
            task_id,
            same_request: false,
        } => {
            return Err(ApiError::IdempotencyKeyReused(format!(
                "this Idempotency-Key was used for a different request (task {task_id})"
            )));
        }
    };
    Ok((id, state_now))
}

/// The request's `traceparent` header; an invalid one is ignored, as W3C Trace Context asks.
pub(crate) fn traceparent(headers: &HeaderMap) -> Option<TraceParent> {
    let parsed = headers.get("traceparent")?.to_str().ok().and_then(TraceParent::parse);
    if parsed.is_none() {
        tracing::debug!("ignoring an invalid traceparent header");
    }
    parsed
}

/// The `202 Accepted` answer for a stored task.
pub fn accepted(id: &TaskId, state: TaskState) -> Response {
    let status_url = format!("/tasks/{id}");
    let location = HeaderValue::from_str(&status_url).expect("ids are header-safe");
    let body = Accepted {
        task_id: id.to_string(),
        state,
        queue: id.queue().to_string(),
        status_url,
    };
    (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response()
}

fn due_time(options: &CallOptions, now: i64) -> Result<Option<i64>, ApiError> {
    match (options.countdown, &options.eta) {
        (Some(_), Some(_)) => Err(ApiError::invalid("eta", "give countdown or eta, not both")),
        (Some(secs), None) => {
            if !(secs.is_finite() && (0.0..=MAX_DELAY_SECS).contains(&secs)) {
                return Err(ApiError::invalid("countdown", "must be a number of seconds from 0 to one year"));
            }
            Ok(Some(now + (secs * 1000.0) as i64))
        }
        (None, Some(eta)) => {
            let at = parse_time(eta).ok_or_else(|| ApiError::invalid("eta", "must be an RFC 3339 time such as 2026-11-24T21:00:00Z"))?;
            if (at - now) as f64 > MAX_DELAY_SECS * 1000.0 {
                return Err(ApiError::invalid("eta", "must be within one year"));
            }
            Ok(Some(at))
        }
        (None, None) => Ok(None),
    }
}

fn expiry_time(expires: &Value, now: i64) -> Result<i64, ApiError> {
    let bad = || ApiError::invalid("expires", "must be seconds from now (above 0) or an RFC 3339 time");
    match expires {
        Value::Number(n) => {
            let secs = n
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= MAX_DELAY_SECS)
                .ok_or_else(bad)?;
            Ok(now + (secs * 1000.0) as i64)
        }
        Value::String(s) => parse_time(s).ok_or_else(bad),
        _ => Err(bad()),
    }
}

fn parse_time(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

/// The request's `Idempotency-Key`, if it has one, with a digest of `canonical()`: the text
/// of what the request asks for, which tells a true repeat from a reuse of the key. Built only
/// for a request with a key, so no other request pays for it.
pub(crate) fn idempotency(headers: &HeaderMap, canonical: impl FnOnce() -> String) -> Result<Option<Idempotency>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic()));
    let key = key.ok_or_else(|| ApiError::invalid("Idempotency-Key", "must be 1 to 200 visible ASCII characters"))?;
    Ok(Some(Idempotency {
        key: key.to_owned(),
        fingerprint: format!("{:016x}", fnv1a(canonical().as_bytes())),
        ttl_secs: IDEMPOTENCY_TTL_SECS,
    }))
}

/// FNV-1a: a stable digest (the same in every process and version) to tell requests apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
