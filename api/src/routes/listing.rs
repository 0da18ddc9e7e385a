//! `GET /tasks`: the filtered, paginated task listing for the dashboard, newest first.
//! Each page examines a bounded number of index entries (10 × `limit`), so it stays fast
//! with millions of records; a rare filter may therefore answer a short (even empty) page
//! with a `next_cursor`: a client goes on until `next_cursor` is null.

use axum::Json;
use axum::extract::State;
use celeriac::broker::{ListCursor, ListFilter};
use celeriac::{TaskRecord, TaskState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, parse_limit, parse_queue};
use crate::state::AppState;

/// Index entries a page may examine, per task asked for.
const EXAMINE_PER_ITEM: usize = 10;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only tasks in this state (`PENDING`, `SCHEDULED`, `STARTED`, `RETRY`, `SUCCESS`,
    /// `FAILURE`, `REVOKED`).
    #[param(value_type = Option<TaskState>)]
    pub state: Option<String>,
    /// Only this queue.
    #[param(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub queue: Option<String>,
    /// Only this task name.
    pub task: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{1,18}\.[A-Za-z0-9_.-]{1,64}(,[0-9]{1,18}\.[A-Za-z0-9_.-]{1,64})*$")]
    pub cursor: Option<String>,
}

/// One page of tasks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskList {
    pub tasks: Vec<TaskRecord>,
    /// Pass as `cursor` for the next page; null when there is no more. A page may hold fewer
    /// than `limit` tasks (even none) and still have a next one.
    pub next_cursor: Option<String>,
}

/// Tasks newest first, filtered by state, queue and task name, a page at a time.
#[utoipa::path(get, path = "/tasks", tag = "tasks",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tasks, newest first", body = TaskList),
        (status = 422, description = "Invalid state, queue, limit or cursor", body = ErrorBody),
        (status = 503, description = "Redis is unreachable", body = ErrorBody),
    ))]
pub async fn list_tasks(State(state): State<AppState>, ApiQuery(query): ApiQuery<ListQuery>) -> Result<Json<TaskList>, ApiError> {
    let filter = ListFilter {
        queue: query.queue.as_deref().map(parse_queue).transpose()?,
        state: query
            .state
            .as_deref()
            .map(|s| TaskState::parse(&s.to_ascii_uppercase()).ok_or_else(|| ApiError::invalid("state", format!("unknown state {s:?}"))))
            .transpose()?,
        task: query.task.filter(|t| !t.is_empty()),
    };
    let limit = parse_limit(query.limit.as_deref())?;
    let cursor = query
        .cursor
        .as_deref()
        .map(|c| ListCursor::parse(c).ok_or_else(|| ApiError::invalid("cursor", "not a cursor from a previous page")))
        .transpose()?;
    let page = state.broker.list_tasks(&filter, limit, limit * EXAMINE_PER_ITEM, cursor).await?;
    Ok(Json(TaskList {
        tasks: page.tasks,
        next_cursor: page.next.map(|c| c.to_string()),
    }))
}
