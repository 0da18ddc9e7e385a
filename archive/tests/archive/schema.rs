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

/// In a database whose default collation is linguistic (as on the official postgres image,
/// en_US.UTF-8), the archive's indexed text columns still compare bytewise: cheaper at every
/// B-tree step of an insert, and the same order on every server. Under en-US, 'a' sorts
/// before 'B'; bytewise, 'B' (0x42) sorts before 'a' (0x61).
#[tokio::test]
async fn the_indexed_text_columns_compare_bytewise_in_a_database_of_any_locale() {
    let pg = PostgresServer::start();
    let admin = pool(&pg.url("postgres")).await;
    sqlx::query("CREATE DATABASE linguistic TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
        .execute(&admin)
        .await
        .unwrap();
    let pool = pool(&pg.url("linguistic")).await;
    let linguistic: bool = sqlx::query_scalar("SELECT 'a' < 'B'").fetch_one(&pool).await.unwrap();
    assert!(linguistic, "the test database's own collation must be linguistic");
    schema::migrate(&pool).await.unwrap();

    for (task_id, task, queue) in [("x-a", "a", "a"), ("x-B", "B", "B")] {
        sqlx::query(
            "INSERT INTO celeriac_tasks (task_id, task, queue, state, args, attempts, deliveries, finished_at) \
             VALUES ($1, $2, $3, 'SUCCESS', '[]', 1, 1, now())",
        )
        .bind(task_id)
        .bind(task)
        .bind(queue)
        .execute(&pool)
        .await
        .unwrap();
    }
    for query in [
        "SELECT task_id FROM celeriac_tasks ORDER BY task_id",
        "SELECT task FROM celeriac_tasks ORDER BY task",
        "SELECT queue FROM celeriac_tasks ORDER BY queue",
    ] {
        let order: Vec<String> = sqlx::query_scalar(query).fetch_all(&pool).await.unwrap();
        assert!(order[0].ends_with('B') && order[1].ends_with('a'), "{query}: {order:?}");
    }
    let collations: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text || '.' || a.attname::text, coalesce(l.collname::text, '') \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_collation l ON l.oid = a.attcollation \
         WHERE (c.relname, a.attname) IN (('celeriac_tasks', 'task_id'), ('celeriac_tasks', 'task'), \
               ('celeriac_tasks', 'queue'), ('celeriac_tasks', 'state'), ('celeriac_outbox', 'task_id')) ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(collations.len(), 5, "{collations:?}");
    assert!(collations.iter().all(|(_, collation)| collation == "C"), "{collations:?}");
}
