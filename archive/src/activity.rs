//! A user's activity read from the archive, for `generate_report`: per calendar month (UTC),
//! the e-mails sent to them, the reports built for them and the failures among their tasks,
//! counted from the archived tasks tagged `user_id=<id>` (`POST /reports/{user_id}` sets the
//! tag; an e-mail carries it when its caller passes it in `tags`). The tag filter uses the
//! tags' GIN index, the period the `finished_at` one.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// One month of a user's archived tasks.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MonthActivity {
    /// `2026-03`.
    pub month: String,
    /// `send_email` tasks that succeeded.
    pub emails_sent: i64,
    /// `generate_report` tasks that succeeded.
    pub reports_generated: i64,
    /// Tasks of any kind that ended in `FAILURE`.
    pub failures: i64,
}

/// The months in `[from, until)` in which `user_id`'s tagged tasks ended, oldest first (a
/// month with none is absent).
pub async fn user_activity(
    pool: &PgPool,
    user_id: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<MonthActivity>, sqlx::Error> {
    sqlx::query_as(
        "SELECT to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
                count(*) FILTER (WHERE task = 'send_email' AND state = 'SUCCESS') AS emails_sent,
                count(*) FILTER (WHERE task = 'generate_report' AND state = 'SUCCESS') AS reports_generated,
                count(*) FILTER (WHERE state = 'FAILURE') AS failures
         FROM celeriac_tasks
         WHERE tags @> jsonb_build_object('user_id', $1::text) AND finished_at >= $2 AND finished_at < $3
         GROUP BY 1 ORDER BY 1",
    )
    .bind(user_id)
    .bind(from)
    .bind(until)
    .fetch_all(pool)
    .await
}
