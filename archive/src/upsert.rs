//! Writing archived rows: one `INSERT ... SELECT FROM unnest(...) ON CONFLICT (task_id) DO
//! UPDATE` per batch, its rows passed as one array per column. The statement's text is the
//! same for every batch, so each connection prepares and plans it once; a multi-row `VALUES`
//! list with a placeholder per value (23 per row) was a new statement for every batch size,
//! and building its text (`$1`, `$2`, ... formatted one by one) took about a quarter of the
//! archiver's own CPU (archive/examples/ingest_cost.rs).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::row::ArchivedTask;

/// The columns written, in the order of the statement's parameters (and of [`Columns`]), each
/// with its SQL type. A `jsonb` column is passed as text and cast by the statement.
const COLUMNS: [(&str, &str); 23] = [
    ("task_id", "text"),
    ("task", "text"),
    ("queue", "text"),
    ("state", "text"),
    ("args", "jsonb"),
    ("result", "jsonb"),
    ("error", "jsonb"),
    ("attempts", "int4"),
    ("deliveries", "int4"),
    ("created_at", "timestamptz"),
    ("started_at", "timestamptz"),
    ("finished_at", "timestamptz"),
    ("queue_wait_ms", "int8"),
    ("run_time_ms", "int8"),
    ("worker", "text"),
    ("workflow_id", "text"),
    ("trace_id", "text"),
    ("tags", "jsonb"),
    ("options", "jsonb"),
    ("max_retries", "int4"),
    ("workflow_node", "int4"),
    ("eta", "timestamptz"),
    ("expires_at", "timestamptz"),
];

/// The statement, written once from [`COLUMNS`]. A task archived again (an entry read twice,
/// or a task run again after it ended) keeps its latest ending.
static UPSERT: LazyLock<String> = LazyLock::new(|| {
    let names = || COLUMNS.iter().map(|(name, _)| *name);
    let list = names().collect::<Vec<_>>().join(", ");
    let selected = COLUMNS
        .iter()
        .map(|(name, ty)| {
            if *ty == "jsonb" {
                format!("{name}::jsonb")
            } else {
                (*name).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let arrays = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("${}::{}[]", i + 1, if *ty == "jsonb" { "text" } else { ty }))
        .collect::<Vec<_>>()
        .join(", ");
    let updates = names()
        .skip(1)
        .map(|name| format!("{name} = excluded.{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO celeriac_tasks ({list}) SELECT {selected} FROM unnest({arrays}) AS r({list}) \
         ON CONFLICT (task_id) DO UPDATE SET {updates}, archived_at = now() \
         WHERE celeriac_tasks.finished_at <= excluded.finished_at"
    )
});

/// Writes the rows in one statement (committed when it returns).
pub async fn upsert(pool: &PgPool, rows: &[ArchivedTask]) -> Result<(), sqlx::Error> {
    let c = Columns::of(rows);
    sqlx::query(UPSERT.as_str())
        .bind(c.task_id)
        .bind(c.task)
        .bind(c.queue)
        .bind(c.state)
        .bind(c.args)
        .bind(c.result)
        .bind(c.error)
        .bind(c.attempts)
        .bind(c.deliveries)
        .bind(c.created_at)
        .bind(c.started_at)
        .bind(c.finished_at)
        .bind(c.queue_wait_ms)
        .bind(c.run_time_ms)
        .bind(c.worker)
        .bind(c.workflow_id)
        .bind(c.trace_id)
        .bind(c.tags)
        .bind(c.options)
        .bind(c.max_retries)
        .bind(c.workflow_node)
        .bind(c.eta)
        .bind(c.expires_at)
        .execute(pool)
        .await?;
    Ok(())
}

/// The rows as one array per column, in the order of [`COLUMNS`]. JSON goes as its text
/// ([`ArchivedTask`] holds it so) and is cast to jsonb by the statement.
#[derive(Default)]
struct Columns<'a> {
    task_id: Vec<&'a str>,
    task: Vec<&'a str>,
    queue: Vec<&'a str>,
    state: Vec<&'a str>,
    args: Vec<&'a str>,
    result: Vec<Option<&'a str>>,
    error: Vec<Option<&'a str>>,
    attempts: Vec<i32>,
    deliveries: Vec<i32>,
    created_at: Vec<Option<DateTime<Utc>>>,
    started_at: Vec<Option<DateTime<Utc>>>,
    finished_at: Vec<DateTime<Utc>>,
    queue_wait_ms: Vec<Option<i64>>,
    run_time_ms: Vec<Option<i64>>,
    worker: Vec<Option<&'a str>>,
    workflow_id: Vec<Option<&'a str>>,
    trace_id: Vec<Option<&'a str>>,
    tags: Vec<&'a str>,
    options: Vec<&'a str>,
    max_retries: Vec<i32>,
    workflow_node: Vec<Option<i32>>,
    eta: Vec<Option<DateTime<Utc>>>,
    expires_at: Vec<Option<DateTime<Utc>>>,
}

impl<'a> Columns<'a> {
    fn of(rows: &'a [ArchivedTask]) -> Self {
        let mut c = Self::default();
        for r in rows {
            c.task_id.push(&r.task_id);
            c.task.push(&r.task);
            c.queue.push(&r.queue);
            c.state.push(&r.state);
            c.args.push(&r.args);
            c.result.push(r.result.as_deref());
            c.error.push(r.error.as_deref());
            c.attempts.push(r.attempts);
            c.deliveries.push(r.deliveries);
            c.created_at.push(r.created_at);
            c.started_at.push(r.started_at);
            c.finished_at.push(r.finished_at);
            c.queue_wait_ms.push(r.queue_wait_ms);
            c.run_time_ms.push(r.run_time_ms);
            c.worker.push(r.worker.as_deref());
            c.workflow_id.push(r.workflow_id.as_deref());
            c.trace_id.push(r.trace_id.as_deref());
            c.tags.push(&r.tags);
            c.options.push(&r.options);
            c.max_retries.push(r.max_retries);
            c.workflow_node.push(r.workflow_node);
            c.eta.push(r.eta);
            c.expires_at.push(r.expires_at);
        }
        c
    }
}
