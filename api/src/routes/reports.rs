//! `POST /reports/{user_id}`: build a report in the background (`generate_report` on queue
//! `reports`); `GET /reports/{task_id}/file`: download it once the task succeeded.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use celeriac::builtin::{GENERATE_REPORT, GenerateReportArgs, ReportFormat};
use celeriac::{TaskId, TaskState};
use serde::Deserialize;
use utoipa::ToSchema;

use celeriac::call::CallOptions;

use crate::enqueue::{Accepted, add_default_tags, enqueue_fields};
use crate::error::{ApiError, ErrorBody};
use crate::extract::OptionalJson;
use crate::routes::tasks::archived_record;
use crate::scope::Scope;
use crate::state::AppState;

/// The optional body of `POST /reports/{user_id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// `csv` (default) or `pdf`.
    #[serde(default)]
    pub format: ReportFormat,
    /// Call options; tags `kind` = `report` and `user_id` are added unless given.
    #[serde(default)]
    pub options: Option<CallOptions>,
}

/// Build a report for a user in the background.
#[utoipa::path(post, path = "/reports/{user_id}", tag = "reports",
    params(("user_id" = String, Path, description = "The user the report is for"),
           ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]{1,200}$", description = "Repeats with the same key within 24 h return the first task"),
           ("traceparent" = Option<String>, Header, description = "W3C trace context; the run continues the trace (an invalid one is ignored)")),
    request_body(content = Option<ReportRequest>, description = "Optional: the format and call options"),
    responses(
        (status = 202, description = "Stored and queued", body = Accepted, headers(("Location" = String, description = "The task's status URL"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 415, description = "A body that is not JSON", body = ErrorBody),
        (status = 422, description = "A field missing or invalid", body = ErrorBody),
        (status = 429, description = "The queue is full", body = ErrorBody),
        (status = 503, description = "Redis is unreachable; nothing was stored", body = ErrorBody),
    ))]
pub async fn post_report(
    State(state): State<AppState>,
    scope: Scope,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    OptionalJson(request): OptionalJson<Option<ReportRequest>>,
) -> Result<Response, ApiError> {
    let request = request.unwrap_or_default();
    let mut options = request.options.unwrap_or_default();
    add_default_tags(&mut options, [("kind", "report"), ("user_id", user_id.as_str())]);
    let args = GenerateReportArgs {
        user_id,
        format: request.format,
    };
    enqueue_fields(&state, &headers, &scope, GENERATE_REPORT, args, options).await
}

/// Download the file of a finished `generate_report` task.
#[utoipa::path(get, path = "/reports/{task_id}/file", tag = "reports",
    params(("task_id" = String, Path, description = "The generate_report task's id")),
    responses(
        (status = 200, description = "The report file: text/csv or application/pdf", content((String = "text/csv"), (Vec<u8> = "application/pdf"))),
        (status = 404, description = "No such report task (in Redis, nor in the archive), or its file is gone", body = ErrorBody),
        (status = 409, description = "The report is not ready (or failed)", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn download_report(State(state): State<AppState>, scope: Scope, Path(task_id): Path<String>) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no report task {task_id:?}"));
    let id = TaskId::parse(&task_id).ok_or_else(not_found)?;
    scope.check_id(&id)?;
    // Once Redis has let the record go, the archive's copy still names the file.
    let record = match state.broker.get(&id).await? {
        Some(record) => record,
        None => archived_record(&state, &id).await?.ok_or_else(not_found)?,
    };
    if record.task != GENERATE_REPORT {
        return Err(not_found());
    }
    scope.check_record(&record)?;
    if record.state != TaskState::Success {
        return Err(ApiError::Conflict(format!("the report is not ready: the task is {}", record.state)));
    }
    let file_name = record
        .result
        .as_ref()
        .and_then(|r| r.get("file_name"))
        .and_then(|f| f.as_str())
        .filter(|f| !f.is_empty() && !f.contains(['/', '\\']) && !f.starts_with('.'))
        .ok_or_else(|| ApiError::Internal(format!("report task {id} has no usable file_name")))?
        .to_owned();
    let bytes = tokio::fs::read(state.settings.reports.dir.join(&file_name))
        .await
        .map_err(|_| ApiError::NotFound(format!("the file of report {id} is gone")))?;
    let content_type = if file_name.ends_with(".pdf") {
        "application/pdf"
    } else {
        "text/csv; charset=utf-8"
    };
    let disposition =
        HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
