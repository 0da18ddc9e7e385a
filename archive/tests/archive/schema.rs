//! The migrations: applied on an empty database, again as a no-op, and a database migrated
//! by a newer build is refused in one line before anything changes.

use celeriac_archive::schema::{self, SchemaError};
use celeriac_testkit::PostgresServer;

use crate::common::pool;

#[tokio::test]
async fn migrations_apply_on_an_empty_database_and_again_as_a_no_op() {
    let pg = PostgresServer::start();
    let pool = pool(&pg.fresh_database()).await;
    assert_eq!(schema::database_version(&pool).await.unwrap(), None);
    schema::migrate(&pool).await.unwrap();
    assert_eq!(schema::database_version(&pool).await.unwrap(), Some(schema::latest_version()));
    let indexes: Vec<String> = sqlx::query_scalar("SELECT indexname::text FROM pg_indexes WHERE tablename = 'celeriac_tasks' ORDER BY 1")
        .fetch_all(&pool)
        .await
        .unwrap();
    for index in [
        "args",
        "error_text",
        "finished",
        "queue_finished",
        "state_finished",
        "tags",
        "task_finished",
    ] {
        assert!(indexes.contains(&format!("celeriac_tasks_{index}")), "index {index} in {indexes:?}");
    }
    sqlx::query(
        "INSERT INTO celeriac_tasks (task_id, task, queue, state, args, attempts, deliveries, finished_at) \
         VALUES ('default-1', 'echo', 'default', 'SUCCESS', '[]', 1, 1, now())",
    )
    .execute(&pool)
    .await
    .unwrap();

    schema::migrate(&pool).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, schema::MIGRATOR.iter().count());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM celeriac_tasks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "the second run changed nothing");
}

#[tokio::test]
async fn a_database_at_a_newer_version_is_refused_with_a_one_line_message() {
    let pg = PostgresServer::start();
    let pool = pool(&pg.fresh_database()).await;
    schema::migrate(&pool).await.unwrap();
    let newer = schema::latest_version() + 1;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'from a newer build', true, '\\x00', 1)",
    )
    .bind(newer)
    .execute(&pool)
    .await
    .unwrap();
    let err = schema::migrate(&pool).await.unwrap_err();
    assert!(
        matches!(err, SchemaError::Newer { database, binary } if database == newer && binary == newer - 1),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(!message.contains('\n') && message.contains("newer than this build"), "{message}");
}
