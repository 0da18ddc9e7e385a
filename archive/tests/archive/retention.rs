//! Retention per state: rows older than their state's retention are deleted (in batches
//! smaller than what is deleted, so several statements run), the rest kept exactly.

use std::collections::BTreeSet;
use std::time::Duration;

use celeriac::settings::RetentionSettings;
use celeriac_archive::retention;
use celeriac_testkit::PostgresServer;

use crate::common::{archived_ids, pool};

#[tokio::test]
async fn each_state_keeps_its_own_retention_and_deletes_in_small_batches() {
    let pg = PostgresServer::start();
    let pool = pool(&pg.fresh_database()).await;
    celeriac_archive::schema::migrate(&pool).await.unwrap();
    const DAY: u64 = 86_400;
    let settings = RetentionSettings {
        success: Duration::from_secs(30 * DAY),
        failure: Duration::from_secs(180 * DAY),
        revoked: Duration::from_secs(7 * DAY),
        batch: 3,
        every: Duration::from_secs(60),
    };
    let now = chrono::Utc::now();
    // Per state, tasks that ended 1, 10, 60 and 200 days ago, five of each.
    let mut keep = BTreeSet::new();
    let mut n = 0;
    for (state, kept_days) in [("SUCCESS", 30), ("FAILURE", 180), ("REVOKED", 7)] {
        for age in [1i64, 10, 60, 200] {
            for _ in 0..5 {
                n += 1;
                let id = format!("default-{n:032x}");
                sqlx::query(
                    "INSERT INTO celeriac_tasks (task_id, task, queue, state, args, attempts, deliveries, finished_at) \
                     VALUES ($1, 'noop', 'default', $2, '[]', 1, 1, $3)",
                )
                .bind(&id)
                .bind(state)
                .bind(now - chrono::Duration::days(age))
                .execute(&pool)
                .await
                .unwrap();
                if age < kept_days {
                    keep.insert(id);
                }
            }
        }
    }
    let deleted = retention::apply(&pool, &settings, now).await.unwrap();
    assert_eq!(deleted as usize, n - keep.len());
    assert_eq!(archived_ids(&pool).await, keep);
    assert_eq!(retention::apply(&pool, &settings, now).await.unwrap(), 0, "nothing left to delete");
}
