//! Writing archived rows: one `INSERT ... SELECT FROM unnest(...) ON CONFLICT (task_id) DO
//! UPDATE` per batch, its rows passed as one array per column. The statement's text is the
//! same for every batch, so each connection prepares and plans it once; a multi-row `VALUES`
//! list with a placeholder per value (23 per row) was a new statement for every batch size,
//! and building its text (`$1`, `$2`, ... formatted one by one) took about a quarter of the
//! archiver's own CPU (archive/examples/ingest_cost.rs).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::row::ArchivedTask;

/// A task archived again (an entry read twice, or a task run again after it ended) keeps its
/// latest ending.
const UPSERT: &str = "INSERT INTO celeriac_tasks (task_id, task, queue, state, args, result, error, attempts, \
     deliveries, created_at, started_at, finished_at, queue_wait_ms, run_time_ms, worker, workflow_id, trace_id, \
     tags, options, max_retries, workflow_node, eta, expires_at) \
     SELECT task_id, task, queue, state, args::jsonb, result::jsonb, error::jsonb, attempts, deliveries, \
     created_at, started_at, finished_at, queue_wait_ms, run_time_ms, worker, workflow_id, trace_id, \
     tags::jsonb, options::jsonb, max_retries, workflow_node, eta, expires_at \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
     $8::int4[], $9::int4[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::int8[], \
     $14::int8[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::int4[], $21::int4[], \
     $22::timestamptz[], $23::timestamptz[]) \
     AS r(task_id, task, queue, state, args, result, error, attempts, deliveries, created_at, started_at, \
     finished_at, queue_wait_ms, run_time_ms, worker, workflow_id, trace_id, tags, options, max_retries, \
     workflow_node, eta, expires_at) \
     ON CONFLICT (task_id) DO UPDATE SET task = excluded.task, queue = excluded.queue, state = excluded.state, \
     args = excluded.args, result = excluded.result, error = excluded.error, attempts = excluded.attempts, \
     deliveries = excluded.deliveries, created_at = excluded.created_at, started_at = excluded.started_at, \
     finished_at = excluded.finished_at, queue_wait_ms = excluded.queue_wait_ms, run_time_ms = excluded.run_time_ms, \
     worker = excluded.worker, workflow_id = excluded.workflow_id, trace_id = excluded.trace_id, tags = excluded.tags, \
     options = excluded.options, max_retries = excluded.max_retries, workflow_node = excluded.workflow_node, \
     eta = excluded.eta, expires_at = excluded.expires_at, \
     archived_at = now() WHERE celeriac_tasks.finished_at <= excluded.finished_at";

/// Writes the rows in one statement (committed when it returns).
pub async fn upsert(pool: &PgPool, rows: &[ArchivedTask]) -> Result<(), sqlx::Error> {
    let c = Columns::of(rows);
    sqlx::query(UPSERT)
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

/// The rows as one array per column, in the statement's order. JSON goes as its text
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
