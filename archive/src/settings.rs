//! The archive's settings, read from the environment (`CELERIAC_ARCHIVE_*`). Kept in this crate
//! so the archive can be turned on without touching the rest of the configuration.

use std::time::Duration;

/// How the archive is reached and how the archiver works.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    /// `postgres://...` of the archive database; `None`: no archive.
    pub database_url: Option<String>,
    /// Whether endings are handed over to the archive (the broker's `with_archive`).
    pub enabled: bool,
    /// Most endings taken from one queue's stream and written in one INSERT.
    pub batch: usize,
    /// How long an entry read by another archiver stays unacknowledged before this one takes
    /// it over (that archiver is presumed dead).
    pub claim_idle: Duration,
    /// How long the archiver waits before looking again when every stream was empty.
    pub poll: Duration,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        Self {
            database_url: None,
            enabled: false,
            batch: 500,
            claim_idle: Duration::from_secs(30),
            poll: Duration::from_millis(200),
        }
    }
}

impl ArchiveSettings {
    /// Reads `CELERIAC_ARCHIVE_DATABASE_URL` (turns the archive on), `CELERIAC_ARCHIVE_BATCH`,
    /// `CELERIAC_ARCHIVE_CLAIM_IDLE_MS` and `CELERIAC_ARCHIVE_POLL_MS`; a bad value is an
    /// error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str| -> Result<Option<u64>, String> {
            var(name)
                .map(|v| v.parse::<u64>().map_err(|_| format!("{name}: expected a whole number, got {v:?}")))
                .transpose()
        };
        let mut settings = Self::default();
        settings.database_url = var("CELERIAC_ARCHIVE_DATABASE_URL");
        settings.enabled = settings.database_url.is_some();
        if let Some(batch) = number("CELERIAC_ARCHIVE_BATCH")? {
            if batch == 0 || batch > 3000 {
                return Err("CELERIAC_ARCHIVE_BATCH: must be between 1 and 3000".into());
            }
            settings.batch = batch as usize;
        }
        if let Some(ms) = number("CELERIAC_ARCHIVE_CLAIM_IDLE_MS")? {
            settings.claim_idle = Duration::from_millis(ms);
        }
        if let Some(ms) = number("CELERIAC_ARCHIVE_POLL_MS")? {
            settings.poll = Duration::from_millis(ms.max(1));
        }
        Ok(settings)
    }
}
