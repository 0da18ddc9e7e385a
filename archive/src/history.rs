//! Reading the archive: one task by id (for `GET /tasks/{id}` once its Redis record expired),
//! and the search of history behind `GET /tasks?source=archive`, newest first with a keyset
//! cursor on `(finished_at, task_id)`, so paging never skips or repeats a row, whatever is
//! archived meanwhile. Each filter is written so that one of the migrations' indexes serves it
//! (the error text exactly as the expression index spells it).

use std::time::Duration;

use celeriac::record::WorkflowLink;
use celeriac::{TaskId, TaskRecord, TaskState};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgPool, Postgres, QueryBuilder};

use crate::schema::{self, SchemaError};

/// The archive as the gateway and the workers read it: a pool on the migrated database.
#[derive(Debug, Clone)]
pub struct History {
    pool: PgPool,
}

/// What to search for; every filter is optional, and they combine with AND.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub task: Option<String>,
    pub queue: Option<String>,
    /// `SUCCESS`, `FAILURE` or `REVOKED`.
    pub state: Option<TaskState>,
    /// Finished at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Finished before this time.
    pub to: Option<DateTime<Utc>>,
    /// A tag (name, value) the task carries.
    pub tag: Option<(String, String)>,
    /// Words that all occur in the error's kind or message.
    pub error: Option<String>,
    /// A JSON value the arguments contain (`{"to": "ada@example.com"}`).
    pub args: Option<Value>,
}

/// Where the next page starts: after this `(finished_at, task_id)`, going back in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCursor {
    pub finished_us: i64,
    pub task_id: String,
}

impl SearchCursor {
    /// Parses `<finished µs>.<task id>`, the form `to_string` writes.
    pub fn parse(raw: &str) -> Option<Self> {
        let (us, id) = raw.split_once('.')?;
        TaskId::parse(id)?;
        Some(Self {
            finished_us: us.parse().ok()?,
            task_id: id.to_owned(),
        })
    }
}

impl std::fmt::Display for SearchCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.finished_us, self.task_id)
    }
}

/// One page of history.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub tasks: Vec<TaskRecord>,
    pub next: Option<SearchCursor>,
}

/// Runs and failures of one task on one day (UTC), for the dashboard's chart.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct DailyCount {
    pub day: chrono::NaiveDate,
    pub task: String,
    pub runs: i64,
    pub failures: i64,
}

const COLUMNS: &str = "task_id, task, state, args, result, error, attempts, deliveries, created_at, started_at, \
     finished_at, worker, workflow_id, trace_id, options, max_retries, workflow_node, eta, expires_at";

#[derive(sqlx::FromRow)]
struct Row {
    task_id: String,
    task: String,
    state: String,
    args: Json<Value>,
    result: Option<Json<Value>>,
    error: Option<Json<Value>>,
    attempts: i32,
    deliveries: i32,
    created_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: DateTime<Utc>,
    worker: Option<String>,
    workflow_id: Option<String>,
    trace_id: Option<String>,
    options: Json<Value>,
    max_retries: Option<i32>,
    workflow_node: Option<i32>,
    eta: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
}

impl Row {
    /// The record as `GET /tasks/{id}` shows a live one; `None` for a row that cannot be one
    /// (a task id or state no build writes).
    fn into_record(self) -> Option<TaskRecord> {
        let task_id = TaskId::parse(&self.task_id)?;
        let options: celeriac::TaskOptions = serde_json::from_value(self.options.0).unwrap_or_default();
        Some(TaskRecord {
            queue: task_id.queue().to_string(),
            task: self.task,
            state: TaskState::parse(&self.state)?,
            attempt: self.attempts.max(0) as u32,
            deliveries: self.deliveries.max(0) as u32,
            max_retries: self
                .max_retries
                .map(|m| m.max(0) as u32)
                .or(options.max_retries)
                .or(celeriac::TaskOptions::worker_defaults().max_retries)
                .unwrap_or(0),
            args: self.args.0,
            options,
            progress: None,
            result: self.result.map(|r| r.0),
            error: self.error.and_then(|e| serde_json::from_value(e.0).ok()),
            created_at: self.created_at,
            eta: self.eta,
            started_at: self.started_at,
            finished_at: Some(self.finished_at),
            expires_at: self.expires_at,
            worker: self.worker,
            webhooks: Vec::new(),
            workflow: self.workflow_id.map(|workflow_id| WorkflowLink {
                workflow_id,
                node: self.workflow_node.unwrap_or(0).max(0) as usize,
            }),
            trace_id: self.trace_id,
            task_id,
        })
    }
}

impl History {
    /// Connects to the archive (a one-line error naming what failed, with the URL's password
    /// hidden) and brings its schema to this build's, refusing a newer one.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, SchemaError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        schema::migrate(&pool).await?;
        Ok(Self { pool })
    }

    /// Over a pool already on a migrated database.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The archived record of `id`, if it was archived.
    pub async fn get(&self, id: &TaskId) -> Result<Option<TaskRecord>, sqlx::Error> {
        let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!("SELECT {COLUMNS} FROM celeriac_tasks WHERE task_id = $1")))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(Row::into_record))
    }

    /// Up to `limit` archived tasks matching `filter`, newest ending first, after `after`.
    pub async fn search(&self, filter: &SearchFilter, limit: usize, after: Option<&SearchCursor>) -> Result<SearchPage, sqlx::Error> {
        let mut q = search_query("", filter, limit, after);
        let mut rows: Vec<Row> = q.build_query_as().fetch_all(&self.pool).await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = more.then(|| rows.last()).flatten().map(|last| SearchCursor {
            finished_us: last.finished_at.timestamp_micros(),
            task_id: last.task_id.clone(),
        });
        Ok(SearchPage {
            tasks: rows.into_iter().filter_map(Row::into_record).collect(),
            next,
        })
    }

    /// PostgreSQL's plan for the first page of `filter` (`EXPLAIN`), to check which index
    /// serves it.
    pub async fn explain(&self, filter: &SearchFilter, limit: usize) -> Result<String, sqlx::Error> {
        let mut q = search_query("EXPLAIN ", filter, limit, None);
        let lines: Vec<String> = q.build_query_scalar().fetch_all(&self.pool).await?;
        Ok(lines.join("\n"))
    }

    /// The archive's size: rows (PostgreSQL's estimate, cheap at any size) and bytes on disk
    /// (table and indexes).
    pub async fn size(&self) -> Result<(i64, i64), sqlx::Error> {
        sqlx::query_as(
            "SELECT greatest(reltuples, 0)::bigint, pg_total_relation_size(oid) FROM pg_class WHERE oid = 'celeriac_tasks'::regclass",
        )
        .fetch_one(&self.pool)
        .await
    }

    /// Runs and failures per task per day over the last `days` days (UTC), oldest day first.
    pub async fn daily_counts(&self, days: u32) -> Result<Vec<DailyCount>, sqlx::Error> {
        sqlx::query_as(
            "SELECT (finished_at AT TIME ZONE 'UTC')::date AS day, task, count(*) AS runs, \
             count(*) FILTER (WHERE state = 'FAILURE') AS failures \
             FROM celeriac_tasks WHERE finished_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => $1) \
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(days.saturating_sub(1) as i32)
        .fetch_all(&self.pool)
        .await
    }
}

/// The search of a page of `filter`, after `after`, behind `prefix` (`EXPLAIN `, or nothing).
fn search_query(prefix: &str, filter: &SearchFilter, limit: usize, after: Option<&SearchCursor>) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::<Postgres>::new(format!("{prefix}SELECT {COLUMNS} FROM celeriac_tasks WHERE true"));
    push_filter(&mut q, filter);
    if let Some(c) = after {
        let at = DateTime::from_timestamp_micros(c.finished_us).unwrap_or_default();
        q.push(" AND (finished_at, task_id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(c.task_id.clone())
            .push(")");
    }
    q.push(" ORDER BY finished_at DESC, task_id DESC LIMIT ")
        .push_bind(limit as i64 + 1);
    q
}

/// The WHERE clauses of `filter`, each in the form an index of the migrations serves.
fn push_filter(q: &mut QueryBuilder<Postgres>, f: &SearchFilter) {
    if let Some(task) = &f.task {
        q.push(" AND task = ").push_bind(task.clone());
    }
    if let Some(queue) = &f.queue {
        q.push(" AND queue = ").push_bind(queue.clone());
    }
    if let Some(state) = f.state {
        q.push(" AND state = ").push_bind(state.to_string());
    }
    if let Some(from) = f.from {
        q.push(" AND finished_at >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        q.push(" AND finished_at < ").push_bind(to);
    }
    if let Some((name, value)) = &f.tag {
        let mut tag = serde_json::Map::new();
        tag.insert(name.clone(), Value::String(value.clone()));
        q.push(" AND tags @> ").push_bind(Json(Value::Object(tag)));
    }
    if let Some(words) = &f.error {
        q.push(
            " AND error IS NOT NULL AND to_tsvector('simple', coalesce(error ->> 'kind', '') || ' ' || coalesce(error ->> 'message', '')) \
             @@ plainto_tsquery('simple', ",
        )
        .push_bind(words.clone())
        .push(")");
    }
    if let Some(args) = &f.args {
        q.push(" AND args @> ").push_bind(Json(args.clone()));
    }
}
