//! Retention: archived tasks older than their state's retention (`[archive.retention]`) are
//! deleted in small batches (one short DELETE of at most `batch` rows at a time, found through
//! the `(state, finished_at)` index), so the table is never locked for long and the archiver
//! keeps archiving between batches.

use celeriac::settings::RetentionSettings;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Deletes, for each state, the rows that ended before `now` minus its retention. Returns how
/// many rows were deleted.
pub async fn apply(pool: &PgPool, retention: &RetentionSettings, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    for (state, kept) in retention.per_state() {
        let before = now - chrono::Duration::from_std(kept).unwrap_or(chrono::Duration::MAX);
        loop {
            let done = sqlx::query(
                "DELETE FROM celeriac_tasks WHERE task_id IN (SELECT task_id FROM celeriac_tasks \
                 WHERE state = $1 AND finished_at < $2 ORDER BY finished_at LIMIT $3)",
            )
            .bind(state.to_string())
            .bind(before)
            .bind(retention.batch as i64)
            .execute(pool)
            .await?
            .rows_affected();
            deleted += done;
            if done < retention.batch as u64 {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "archive retention applied");
    }
    Ok(deleted)
}

/// Applies the retention now and then every `retention.every` until `stop` completes; a
/// failure is logged and tried again at the next turn.
pub async fn run(pool: PgPool, retention: RetentionSettings, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        if let Err(e) = apply(&pool, &retention, Utc::now()).await {
            tracing::warn!(error = %e, "archive retention failed; trying again later");
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(retention.every) => {}
        }
    }
}
