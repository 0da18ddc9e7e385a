//! The built-in tasks, and the registry a stock worker runs.

pub mod diagnostic;
pub mod email;
pub mod report;

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
    registry
        .register(email::SendEmail::from_settings(&settings.smtp)?)
        .register(report::GenerateReport::new(settings.reports.dir.clone()));
    Ok(registry)
}
