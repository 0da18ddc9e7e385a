//! `GET /tasks`: the filtered, paginated task listing, newest first, from one of two sources.
//!
//! `source=live` (the default) walks Redis: every task whose record has not expired, in any
//! state. Each page examines a bounded number of index entries (10 × `limit`), so it stays
//! fast with millions of records; a rare filter may therefore answer a short (even empty) page
//! with a `next_cursor`: a client goes on until `next_cursor` is null.
//!
//! `source=archive` searches the PostgreSQL archive (`[archive] database_url`): every task that
//! ended and is still within its retention, by task, queue, state, time range, tag, error
//! text and argument containment, newest ending first, with a keyset cursor (no gap and no
//! repeat while tasks keep arriving), each filter served by an index. A filter only the
//! archive knows (`from`, `to`, `error`, `args`) selects it without `source`.

use axum::Json;
use axum::extract::State;
use celeriac::TaskState;
use celeriac::broker::{ListCursor, ListFilter};
use celeriac_archive::{SearchCursor, SearchFilter};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, parse_limit, parse_queue};
use crate::routes::tasks::TaskView;
use crate::scope::Scope;
use crate::state::AppState;

/// Index entries a page may examine, per task asked for.
const EXAMINE_PER_ITEM: usize = 10;

/// Longest `args` filter accepted, in bytes of JSON.
const MAX_ARGS_FILTER: usize = 4096;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `live` (Redis: tasks whose record has not expired, any state) or `archive` (the
    /// PostgreSQL history of tasks that ended). Default: `archive` when `from`, `to`, `error`
    /// or `args` is given, otherwise `live`.
    pub source: Option<String>,
    /// Only tasks in this state (`PENDING`, `SCHEDULED`, `STARTED`, `RETRY`, `SUCCESS`,
    /// `FAILURE`, `REVOKED`; the archive holds the last three).
    #[param(value_type = Option<TaskState>)]
    pub state: Option<String>,
    /// Only this queue.
    #[param(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub queue: Option<String>,
    /// Only this task name.
    pub task: Option<String>,
    /// Only tasks with this tag, written `name:value` (e.g. `user_id:42`).
    pub tag: Option<String>,
    /// Archive: only tasks that ended at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Archive: only tasks that ended before this time (RFC 3339).
    pub to: Option<String>,
    /// Archive: only failures whose error kind or message holds all these words.
    pub error: Option<String>,
    /// Archive: only tasks whose arguments contain this JSON (e.g. `{"to":"ada@example.com"}`).
    pub args: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page (of the same source and filters).
    #[param(pattern = r"^[0-9]{1,18}\.[A-Za-z0-9_.-]{1,128}(,[0-9]{1,18}\.[A-Za-z0-9_.-]{1,128})*$")]
    pub cursor: Option<String>,
}

/// One page of tasks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaskList {
    pub tasks: Vec<TaskView>,
    /// Pass as `cursor` for the next page; null when there is no more. A live page may hold
    /// fewer than `limit` tasks (even none) and still have a next one.
    pub next_cursor: Option<String>,
    /// Where the page comes from: `live` or `archive`.
    #[schema(example = "live")]
    pub source: String,
}

/// A `tag` filter, `name:value`; the error names the field.
pub(crate) fn parse_tag(raw: &str) -> Result<(String, String), ApiError> {
    raw.split_once(':')
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| ApiError::invalid("tag", "must be name:value, e.g. user_id:42"))
}

/// Tasks newest first, filtered, a page at a time: live from Redis, or the archive's history.
#[utoipa::path(get, path = "/tasks", tag = "tasks",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tasks, newest first", body = TaskList),
        (status = 422, description = "Invalid filter, limit or cursor, or no archive configured for an archive search", body = ErrorBody),
        (status = 503, description = "Redis (live) or the archive is unreachable", body = ErrorBody),
    ))]
pub async fn list_tasks(
    State(state): State<AppState>,
    scope: Scope,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<TaskList>, ApiError> {
    if let Some(queue) = query.queue.as_deref() {
        scope.check_queue(queue)?;
    }
    let archive_only = query.from.is_some() || query.to.is_some() || query.error.is_some() || query.args.is_some();
    let source = query.source.as_deref().unwrap_or(if archive_only { "archive" } else { "live" });
    match source {
        "live" if archive_only => Err(ApiError::invalid(
            "source",
            "from, to, error and args search the archive: use source=archive",
        )),
        "live" => list_live(&state, &scope, query).await,
        "archive" => search_archive(&state, &scope, query).await,
        other => Err(ApiError::invalid("source", format!("must be live or archive, got {other:?}"))),
    }
}

fn parse_state(raw: Option<&str>) -> Result<Option<TaskState>, ApiError> {
    raw.map(|s| TaskState::parse(&s.to_ascii_uppercase()).ok_or_else(|| ApiError::invalid("state", format!("unknown state {s:?}"))))
        .transpose()
}

async fn list_live(state: &AppState, scope: &Scope, query: ListQuery) -> Result<Json<TaskList>, ApiError> {
    let filter = ListFilter {
        queue: query.queue.as_deref().map(parse_queue).transpose()?,
        state: parse_state(query.state.as_deref())?,
        task: query.task.filter(|t| !t.is_empty()),
        tag: query.tag.as_deref().map(parse_tag).transpose()?,
    };
    let limit = parse_limit(query.limit.as_deref())?;
    let cursor = query
        .cursor
        .as_deref()
        .map(|c| ListCursor::parse(c).ok_or_else(|| ApiError::invalid("cursor", "not a cursor from a previous page")))
        .transpose()?;
    let mut page = state.broker.list_tasks(&filter, limit, limit * EXAMINE_PER_ITEM, cursor).await?;
    // Out of the token's scope: left out (the page may hold fewer, as it already may).
    page.tasks.retain(|t| scope.allows(&t.queue, &t.task));
    Ok(Json(TaskList {
        tasks: page.tasks.into_iter().map(TaskView::live).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
        source: "live".into(),
    }))
}

async fn search_archive(state: &AppState, scope: &Scope, query: ListQuery) -> Result<Json<TaskList>, ApiError> {
    let history = state.history.as_ref().ok_or_else(|| {
        ApiError::invalid(
            "source",
            "no archive is configured ([archive] database_url): history cannot be searched",
        )
    })?;
    let time = |field: &str, raw: Option<&str>| -> Result<Option<DateTime<Utc>>, ApiError> {
        raw.map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 time such as 2026-11-24T21:00:00Z"))
        })
        .transpose()
    };
    let state_filter = parse_state(query.state.as_deref())?;
    if let Some(s) = state_filter
        && !s.is_terminal()
    {
        return Err(ApiError::invalid("state", format!("the archive holds tasks that ended, not {s}")));
    }
    let args = match query.args.as_deref() {
        None => None,
        Some(raw) if raw.len() > MAX_ARGS_FILTER => {
            return Err(ApiError::invalid("args", format!("must be at most {MAX_ARGS_FILTER} bytes")));
        }
        Some(raw) => Some(
            serde_json::from_str::<Value>(raw).map_err(|_| ApiError::invalid("args", "must be JSON, e.g. {\"to\":\"ada@example.com\"}"))?,
        ),
    };
    let filter = SearchFilter {
        task: query.task.filter(|t| !t.is_empty()),
        queue: query.queue.as_deref().map(parse_queue).transpose()?.map(|q| q.to_string()),
        state: state_filter,
        from: time("from", query.from.as_deref())?,
        to: time("to", query.to.as_deref())?,
        tag: query.tag.as_deref().map(parse_tag).transpose()?,
        error: query.error.filter(|e| !e.trim().is_empty()),
        args,
    };
    let limit = parse_limit(query.limit.as_deref())?;
    let cursor = query
        .cursor
        .as_deref()
        .map(|c| SearchCursor::parse(c).ok_or_else(|| ApiError::invalid("cursor", "not a cursor from a previous archive page")))
        .transpose()?;
    let mut page = history.search(&filter, limit, cursor.as_ref()).await?;
    page.tasks.retain(|t| scope.allows(&t.queue, &t.task));
    Ok(Json(TaskList {
        tasks: page.tasks.into_iter().map(TaskView::archived).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
        source: "archive".into(),
    }))
}
