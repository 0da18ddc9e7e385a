//! Writing archived rows: one `INSERT ... SELECT FROM unnest(...) ON CONFLICT (task_id) DO
//! UPDATE` per batch, its rows passed as one array per column. The statement's text is the
//! same for every batch, so each connection prepares and plans it once; a multi-row `VALUES`
//! list with a placeholder per value (23 per row) was a new statement for every batch size,
//! and building its text (`$1`, `$2`, ... formatted one by one) took about a quarter of the
//! archiver's own CPU (archive/examples/ingest_cost.rs).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgPool, Postgres};

use crate::row::ArchivedTask;

/// Defines the columns written from one list, so that a column is named once: each column's
/// name (a field of [`ArchivedTask`] and of `celeriac_tasks`), its SQL type (a `jsonb` column is
/// passed as text and cast by the statement), the type of its array's elements, and how a row
/// gives its value. Generates [`COLUMNS`] (the statement's columns, in the order of its
/// parameters), [`Columns`] (the rows as one array per column) and the binding of those arrays
/// in the same order.
macro_rules! columns {
    ($lt:lifetime, $row:ident => $($name:ident: $sql:literal, $element:ty = $value:expr;)*) => {
        const COLUMNS: &[(&str, &str)] = &[$((stringify!($name), $sql)),*];

        /// The rows as one array per column, in the order of [`COLUMNS`].
        #[derive(Default)]
        struct Columns<$lt> {
            $($name: Vec<$element>,)*
        }

        impl<$lt> Columns<$lt> {
            fn of(rows: &$lt [ArchivedTask]) -> Self {
                let mut columns = Self::default();
                for $row in rows {
                    $(columns.$name.push($value);)*
                }
                columns
            }

            /// The statement with every array bound, in the order of [`COLUMNS`].
            fn bind(self, statement: Query<$lt, Postgres, PgArguments>) -> Query<$lt, Postgres, PgArguments> {
                statement$(.bind(self.$name))*
            }
        }
    };
}

columns!('a, r =>
    task_id: "text", &'a str = &r.task_id;
    task: "text", &'a str = &r.task;
    queue: "text", &'a str = &r.queue;
    state: "text", &'a str = &r.state;
    args: "jsonb", &'a str = &r.args;
    result: "jsonb", Option<&'a str> = r.result.as_deref();
    error: "jsonb", Option<&'a str> = r.error.as_deref();
    attempts: "int4", i32 = r.attempts;
    deliveries: "int4", i32 = r.deliveries;
    created_at: "timestamptz", Option<DateTime<Utc>> = r.created_at;
    started_at: "timestamptz", Option<DateTime<Utc>> = r.started_at;
    finished_at: "timestamptz", DateTime<Utc> = r.finished_at;
    queue_wait_ms: "int8", Option<i64> = r.queue_wait_ms;
    run_time_ms: "int8", Option<i64> = r.run_time_ms;
    worker: "text", Option<&'a str> = r.worker.as_deref();
    workflow_id: "text", Option<&'a str> = r.workflow_id.as_deref();
    trace_id: "text", Option<&'a str> = r.trace_id.as_deref();
    tags: "jsonb", &'a str = &r.tags;
    options: "jsonb", &'a str = &r.options;
    max_retries: "int4", i32 = r.max_retries;
    workflow_node: "int4", Option<i32> = r.workflow_node;
    eta: "timestamptz", Option<DateTime<Utc>> = r.eta;
    expires_at: "timestamptz", Option<DateTime<Utc>> = r.expires_at;
);

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
    Columns::of(rows).bind(sqlx::query(UPSERT.as_str())).execute(pool).await?;
    Ok(())
}
