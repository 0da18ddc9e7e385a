//! `POST /workflows` (chain, group, chord), `GET /workflows/{id}` and
//! `POST /workflows/{id}/revoke`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use celeriac::broker::{WorkflowOutcome, WorkflowStarted, WorkflowStatus, parse_workflow_id};
use celeriac::catalog::CallError;
use celeriac::workflow::{Plan, WorkflowSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::scope::Scope;
use crate::state::AppState;

/// The answer to an accepted workflow.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkflowAccepted {
    #[serde(flatten)]
    pub started: WorkflowStarted,
    #[schema(example = "RUNNING")]
    pub state: String,
    #[schema(example = "/workflows/wf-01a20f3f30df7484bcfb6d3bb98a5ee9")]
    pub status_url: String,
}

/// Start a workflow: a chain, group or chord of task signatures (nested as you like), with an
/// optional `on_error` task that runs once if a member fails for good.
#[utoipa::path(post, path = "/workflows", tag = "workflows",
    request_body(content = WorkflowSpec, example = json!({"chain": [{"task": "add", "args": [2, 2]}, {"task": "add", "args": [4]}]})),
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]{1,200}$", description = "Repeats with the same key within 24 h (at most the result TTL) return the first workflow"),
        ("traceparent" = Option<String>, Header, description = "W3C trace context; every member's run continues the trace (an invalid one is ignored)"),
    ),
    responses(
        (status = 202, description = "Stored; its first tasks are queued", body = WorkflowAccepted, headers(("Location" = String, description = "The workflow's status URL"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "An invalid description (unknown task, empty group, nesting too deep...), or an Idempotency-Key used for a different request", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn post_workflow(
    State(state): State<AppState>,
    scope: Scope,
    headers: HeaderMap,
    ApiJson(spec): ApiJson<WorkflowSpec>,
) -> Result<Response, ApiError> {
    let mut plan = Plan::compile(&spec).map_err(|e| ApiError::invalid(e.path, e.message))?;
    // Exported spans: the members' runs continue the request's span; else the caller's header.
    let context = celeriac::trace::TraceParent::of_span(&tracing::Span::current()).or_else(|| crate::enqueue::traceparent(&headers));
    plan.traceparent = context.map(|t| t.to_string());
    // What the request asks for: its description as sent (not the plan, whose defaults may
    // change with a deploy between a request and its repeat).
    let idempotency = crate::enqueue::idempotency(&headers, || serde_json::to_string(&spec).expect("a description serializes"))?;
    for (n, node) in plan.nodes.iter_mut().enumerate() {
        let where_ = format!("node {n} ({})", node.task);
        // A member's arguments are completed by its predecessors' results when it is
        // enqueued, so only its name, queue and options are checked here.
        let resolved = state
            .catalog
            .resolve(&state.broker, &node.task, node.queue.as_deref(), &node.options)
            .await
            .map_err(|e| match e {
                CallError::Invalid(e) if e.field == "queue" => ApiError::invalid(format!("{where_}.queue"), e.message),
                CallError::Invalid(e) => ApiError::invalid(format!("{where_}.options.{}", e.field), e.message),
                other => other.into(),
            })?;
        scope.check(resolved.queue.as_str(), &node.task)?;
        node.queue = Some(resolved.queue.to_string());
        node.options = resolved.options;
    }
    let (started, state_now) = match idempotency {
        None => (state.broker.start_workflow(&plan).await?, "RUNNING".to_owned()),
        Some(idempotency) => match state.broker.start_workflow_with_key(&plan, &idempotency).await? {
            WorkflowOutcome::Accepted { started, state, .. } => (started, state),
            WorkflowOutcome::KeyReused { workflow_id } => {
                return Err(ApiError::IdempotencyKeyReused(format!(
                    "this Idempotency-Key was used for a different request (workflow {workflow_id})"
                )));
            }
        },
    };
    let status_url = format!("/workflows/{}", started.workflow_id);
    let location = HeaderValue::from_str(&status_url).map_err(|e| ApiError::Internal(e.to_string()))?;
    let body = WorkflowAccepted {
        started,
        state: state_now,
        status_url,
    };
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response())
}

/// A workflow's state, its members' states and, once it succeeded, its result.
#[utoipa::path(get, path = "/workflows/{id}", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id")),
    responses(
        (status = 200, description = "The workflow", body = WorkflowStatus),
        (status = 404, description = "No such workflow, or it expired", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn get_workflow(State(state): State<AppState>, scope: Scope, Path(id): Path<String>) -> Result<Json<WorkflowStatus>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no workflow {id:?}: it never existed or it expired"));
    let valid = parse_workflow_id(&id).ok_or_else(not_found)?;
    let status = state.broker.workflow_status(valid).await?.ok_or_else(not_found)?;
    check_members(&scope, &status)?;
    Ok(Json(status))
}

/// `403` unless the token may use every member of the workflow (its queues and task types).
fn check_members(scope: &Scope, status: &WorkflowStatus) -> Result<(), ApiError> {
    for member in &status.members {
        let queue = celeriac::TaskId::parse(&member.task_id)
            .map(|id| id.queue().to_string())
            .unwrap_or_default();
        scope.check(&queue, &member.task)?;
    }
    Ok(())
}

/// Revoke a running workflow: no member starts any more, unfinished members are revoked.
#[utoipa::path(post, path = "/workflows/{id}/revoke", tag = "workflows",
    params(("id" = String, Path, description = "Workflow id")),
    responses(
        (status = 200, description = "Revoked", body = WorkflowStatus),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "The workflow has already finished", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn revoke_workflow(
    State(state): State<AppState>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Json<WorkflowStatus>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no workflow {id:?}"));
    let valid = parse_workflow_id(&id).ok_or_else(not_found)?;
    check_members(&scope, &state.broker.workflow_status(valid).await?.ok_or_else(not_found)?)?;
    match state.broker.revoke_workflow(valid).await?.as_deref() {
        None => return Err(not_found()),
        Some("RUNNING") => {}
        Some(other) => return Err(ApiError::Conflict(format!("workflow {id} has already finished ({other})"))),
    }
    state.broker.workflow_status(valid).await?.map(Json).ok_or_else(not_found)
}
