//! Logging setup shared by every binary: human-readable text or JSON lines, filtered by the
//! settings or `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::settings::LogSettings;

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if settings.format == "json" {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}
