//! Enqueue, shared by `POST /tasks`, `POST /emails` and `POST /reports/{user_id}`: check the
//! task name, arguments and options, honour `Idempotency-Key` and queue limits, store the task
//! in one atomic step (with the request's W3C `traceparent`, when valid, for the run to
//! continue; a plain task's step shared with concurrent requests', `broker/batcher.rs`), and
//! answer `202` with the id and a `Location` to poll.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use celeriac::broker::{EnqueueBatcher, EnqueueOutcome, Idempotency};
use celeriac::call::{CallOptions, ObjectFields, read_object};
use celeriac::digest::{FNV_OFFSET, fnv1a};
use celeriac::trace::TraceParent;
use celeriac::{TaskId, TaskState};
use serde::de::{self, MapAccess};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use tracing::Instrument;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::scope::Scope;
use crate::state::AppState;

/// How long an idempotency key is remembered.
const IDEMPOTENCY_TTL_SECS: u64 = 24 * 3600;

/// `POST /tasks`: any registered task, with its call options at the top level.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskRequest {
    /// A registered task name, e.g. `add`.
    #[schema(example = "add")]
    pub task: String,
    /// The task's arguments: any JSON (an array, an object...), as the task expects.
    #[schema(value_type = Value, example = json!([2, 2]))]
    pub args: Value,
    #[serde(flatten)]
    pub options: CallOptions,
}

/// [`TaskRequest`] while it is read: its task name may be missing yet.
#[derive(Default)]
struct TaskRequestFields {
    task: Option<String>,
    args: Value,
    options: CallOptions,
}

impl ObjectFields for TaskRequestFields {
    const EXPECTING: &'static str = "a task request";

    fn fields() -> Vec<&'static str> {
        let mut fields = vec!["task", "args"];
        fields.extend(CallOptions::fields());
        fields
    }

    fn take_field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "task" => self.task = Some(map.next_value()?),
            "args" => self.args = map.next_value()?,
            other => return self.options.take_field(other, map),
        }
        Ok(true)
    }
}

impl<'de> Deserialize<'de> for TaskRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let read = read_object(deserializer, TaskRequestFields::default())?;
        Ok(Self {
            task: read.task.ok_or_else(|| de::Error::missing_field("task"))?,
            args: read.args,
            options: read.options,
        })
    }
}

/// The answer to every accepted enqueue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    #[schema(example = "emails-031ncPED5QTGLrz5ivqvoB")]
    pub task_id: String,
    pub state: TaskState,
    pub queue: String,
    /// Where to poll the task: `GET` it.
    #[schema(example = "/tasks/emails-031ncPED5QTGLrz5ivqvoB")]
    pub status_url: String,
    /// Present (`true`) when the call was a duplicate of a unique task (`unique_for`), or was
    /// merged into its burst's waiting task (`debounce`: that task now has this call's
    /// arguments and starts later): no new task was created, and `task_id` is the existing one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

/// Validates and stores one task; the `202` response or the error.
pub async fn enqueue(
    state: &AppState,
    headers: &HeaderMap,
    scope: &Scope,
    task: &str,
    args: Value,
    options: CallOptions,
) -> Result<Response, ApiError> {
    Ok(accepted(&enqueue_task(state, headers, scope, task, args, options).await?))
}

/// Enqueues a built-in task whose arguments are the request's own fields (`POST /emails`,
/// `POST /reports/{user_id}`). The one enqueue path checks them ([`celeriac::catalog::Catalog::prepare`]),
/// so the route does not check them again; a field at fault is named as the request names it
/// (`to`, not `args.to`).
pub async fn enqueue_fields(
    state: &AppState,
    headers: &HeaderMap,
    scope: &Scope,
    task: &str,
    args: impl Serialize,
    options: CallOptions,
) -> Result<Response, ApiError> {
    let args = serde_json::to_value(args).map_err(|e| ApiError::Internal(e.to_string()))?;
    enqueue(state, headers, scope, task, args, options).await.map_err(|e| match e {
        ApiError::InvalidField { field, message } => ApiError::InvalidField {
            field: field.strip_prefix("args.").map(str::to_owned).unwrap_or(field),
            message,
        },
        other => other,
    })
}

/// Adds a built-in route's tags to the call's, unless the caller gave a tag of that name
/// (an empty value is not added: `to_domain` of an address without one).
pub fn add_default_tags<'a>(options: &mut CallOptions, defaults: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let tags = options.options.tags.get_or_insert_with(Default::default);
    for (name, value) in defaults {
        if !value.is_empty() && !tags.contains_key(name) {
            tags.insert(name.to_owned(), value.to_owned());
        }
    }
}

/// What an accepted call stands for: the task's id and state now (the first task's, for a
/// replayed `Idempotency-Key` or a unique task's duplicate).
#[derive(Debug)]
pub struct Enqueued {
    pub id: TaskId,
    pub state: TaskState,
    /// The call repeated a unique task (`unique_for`), or merged into a debounced burst's
    /// waiting task: nothing new was stored.
    pub duplicate: bool,
}

/// Validates and stores one task. A token scoped to other queues or task types is refused
/// (403).
pub async fn enqueue_task(
    state: &AppState,
    headers: &HeaderMap,
    scope: &Scope,
    task: &str,
    args: Value,
    mut options: CallOptions,
) -> Result<Enqueued, ApiError> {
    // A repeated request must reach the shard holding its key (the key lives under the
    // shard's hash tag): on a sharded queue, the key picks the shard unless the call did.
    if options.partition_key.is_none()
        && let Some(key) = idempotency_key(headers)?
    {
        options.partition_key = Some(format!("idempotency:{key}"));
    }
    let now = state.broker.clock().now_ms();
    let mut new = state.catalog.prepare(&state.broker, task, &args, &options, now).await?;
    scope.check(new.id.queue().as_str(), task)?;
    // Exported spans: the enqueue is a span of the request's trace, and the run continues it.
    let span = enqueue_span(&new);
    new.traceparent = TraceParent::of_span(&span).or_else(|| traceparent(headers));
    let idempotency = idempotency(headers, || {
        serde_json::json!({ "task": task, "args": args, "queue": new.id.queue().as_str(), "options": options }).to_string()
    })?;
    let queue = new.id.queue().clone();
    let max_pending = state.catalog.max_pending(&state.broker, &queue);
    // The task as stored, if the call stores it: a debounced task waits for the rest of its
    // burst (it is not debounced with an Idempotency-Key), as a task due later does.
    let debounced = new.options.debounce.is_some() && idempotency.is_none();
    let stored = Enqueued {
        id: new.id.clone(),
        state: if debounced || new.due_ms.is_some_and(|d| d > now) {
            TaskState::Scheduled
        } else {
            TaskState::Pending
        },
        duplicate: false,
    };
    let outcome = if idempotency.is_none() && EnqueueBatcher::takes(&new) {
        // A plain task: stored in a call shared with concurrent requests' (batcher.rs).
        let batched = state.batcher.enqueue(new, max_pending);
        batched.instrument(span).await.map(|()| EnqueueOutcome::Stored)?
    } else {
        let alone = state
            .broker
            .enqueue(&queue, std::slice::from_ref(&new), max_pending, idempotency.as_ref());
        // Boxed, as the batcher's own fallback: kept inline, this path's large future would
        // size (and be copied with) every request's, plain ones included.
        Box::pin(alone.instrument(span)).await?
    };
    let (task_id, duplicate) = match outcome {
        EnqueueOutcome::Stored => return Ok(stored),
        EnqueueOutcome::Unique { task_id } | EnqueueOutcome::Debounced { task_id } => (task_id, true),
        EnqueueOutcome::Replayed {
            task_id,
            same_request: true,
        } => (task_id, false),
        EnqueueOutcome::Replayed {
            task_id,
            same_request: false,
        } => {
            return Err(ApiError::IdempotencyKeyReused(format!(
                "this Idempotency-Key was used for a different request (task {task_id})"
            )));
        }
    };
    // The task the call stands for was stored before: its state now.
    let state = state.broker.get(&task_id).await?.map(|r| r.state).unwrap_or(TaskState::Pending);
    Ok(Enqueued {
        id: task_id,
        state,
        duplicate,
    })
}

/// The span of one enqueue, in the request's span, when spans are exported (else none: it
/// would only be read by the exporter).
fn enqueue_span(new: &celeriac::broker::NewTask) -> tracing::Span {
    if !celeriac::telemetry::exporting() {
        return tracing::Span::none();
    }
    tracing::info_span!("enqueue", otel.kind = "producer", task_id = %new.id, task = %new.name, queue = %new.id.queue())
}

/// The request's `traceparent` header; an invalid one is ignored, as W3C Trace Context asks.
pub(crate) fn traceparent(headers: &HeaderMap) -> Option<TraceParent> {
    let parsed = headers.get("traceparent")?.to_str().ok().and_then(TraceParent::parse);
    if parsed.is_none() {
        tracing::debug!("ignoring an invalid traceparent header");
    }
    parsed
}

/// The `202 Accepted` answer, marked `duplicate` for a unique task's repeat.
pub fn accepted(done: &Enqueued) -> Response {
    let id = &done.id;
    let status_url = format!("/tasks/{id}");
    let location = HeaderValue::from_str(&status_url).expect("ids are header-safe");
    let body = Accepted {
        task_id: id.to_string(),
        state: done.state,
        queue: id.queue().to_string(),
        status_url,
        duplicate: done.duplicate,
    };
    (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response()
}

/// The request's `Idempotency-Key`, if it has one, with a digest of `canonical()`: the text
/// of what the request asks for, which tells a true repeat from a reuse of the key. Built only
/// for a request with a key, so no other request pays for it.
pub(crate) fn idempotency(headers: &HeaderMap, canonical: impl FnOnce() -> String) -> Result<Option<Idempotency>, ApiError> {
    let Some(key) = idempotency_key(headers)? else {
        return Ok(None);
    };
    Ok(Some(Idempotency {
        key: key.to_owned(),
        fingerprint: format!("{:016x}", fnv1a(FNV_OFFSET, canonical().as_bytes())),
        ttl_secs: IDEMPOTENCY_TTL_SECS,
    }))
}

/// The request's `Idempotency-Key`, checked.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic()));
    key.map(Some)
        .ok_or_else(|| ApiError::invalid("Idempotency-Key", "must be 1 to 200 visible ASCII characters"))
}
