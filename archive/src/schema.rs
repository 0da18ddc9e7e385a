//! The archive's schema: the SQL files of the repository's `migrations/`, compiled into the
//! binary and applied with sqlx's migrator. Applying them again is a no-op; a database that a
//! newer build already migrated further is refused, in one line, before anything is changed.

use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// The migrations of this build.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the archive database is at schema version {database}, newer than this build's {binary}: run a build at least as new")]
    Newer { database: i64, binary: i64 },
    #[error("archive database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("archive migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The newest migration of this build.
pub fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The newest migration applied to the database, `None` for a database never migrated.
pub async fn database_version(pool: &PgPool) -> Result<Option<i64>, SchemaError> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await?;
    if table.is_none() {
        return Ok(None);
    }
    Ok(sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await?)
}

/// Brings the database to this build's schema, refusing one that is ahead of it.
pub async fn migrate(pool: &PgPool) -> Result<(), SchemaError> {
    let binary = latest_version();
    if let Some(database) = database_version(pool).await?
        && database > binary
    {
        return Err(SchemaError::Newer { database, binary });
    }
    MIGRATOR.run(pool).await?;
    Ok(())
}
