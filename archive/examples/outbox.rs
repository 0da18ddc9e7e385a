//! Enqueue inside the application's own transaction (the outbox), from Rust with sqlx: the new
//! user and the welcome e-mail commit together or not at all. The task id is known at once;
//! celeriac-archiver's relay moves the committed row to Redis under that id.
//!
//! `CELERIAC_ARCHIVE_DATABASE_URL=postgres://... cargo run -p celeriac-archive --example outbox`

use sqlx::postgres::PgPoolOptions;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("CELERIAC_ARCHIVE_DATABASE_URL")?;
    let pool = PgPoolOptions::new().max_connections(1).connect(&url).await?;
    celeriac_archive::schema::migrate(&pool).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS example_users (email text PRIMARY KEY)")
        .execute(&pool)
        .await?;

    let email = format!("ada+{}@example.com", uuid::Uuid::new_v4().simple());
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO example_users (email) VALUES ($1)")
        .bind(&email)
        .execute(&mut *tx)
        .await?;
    let task_id: String = sqlx::query_scalar(
        "SELECT celeriac_enqueue('send_email', jsonb_build_object('to', $1::text, 'subject', 'Welcome', 'body', 'Hello!'), \
         call_options => '{\"tags\": {\"kind\": \"welcome\"}}')",
    )
    .bind(&email)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    println!("user {email} created; welcome e-mail {task_id} queued with it");
    Ok(())
}
