//! The built-in tasks, and the registry a stock worker runs.

pub mod diagnostic;
pub mod email;
pub mod report;

use anyhow::Context;

use crate::{Registry, WorkerProcessSettings};

/// Every built-in task that needs no outside service (no SMTP server, no files).
pub fn diagnostic_registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register(diagnostic::Noop)
        .register(diagnostic::Echo)
        .register(diagnostic::Add)
        .register(diagnostic::Sleep)
        .register(diagnostic::Fail);
    registry
}

/// The registry of the stock `celeriac-worker`: every built-in task.
pub fn builtin_registry(settings: &WorkerProcessSettings) -> anyhow::Result<Registry> {
    let mut registry = diagnostic_registry();
    let mut reports = report::GenerateReport::new(settings.reports.dir.clone());
    if let Some(url) = &settings.archive.database_url {
        // Lazy: the worker starts while PostgreSQL is down; a report then retries.
        let pool = celeriac_archive::sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_lazy(url)
            .context("archive.database_url")?;
        reports = reports.with_history(celeriac_archive::History::new(pool));
    }
    registry
        .register(email::SendEmail::from_settings(&settings.smtp)?)
        .register(reports);
    Ok(registry)
}
