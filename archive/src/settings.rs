//! The archive's settings, read from the environment (`CELERIAC_ARCHIVE_*`). Kept in this crate
//! so the archive can be turned on without touching the rest of the configuration.

use std::time::Duration;

/// How the archive is reached and how the archiver works.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    /// `postgres://...` of the archive database; `None`: no archive, and no process hands
    /// endings over (see [`enabled`](Self::enabled)).
    pub database_url: Option<String>,
    /// Endings taken from one queue's stream and written in one INSERT: its entries are taken
    /// whole (an entry holds the endings of one script call) until the batch holds this many.
    pub batch: usize,
    /// How long an entry read by another archiver stays unacknowledged before this one takes
    /// it over (that archiver is presumed dead).
    pub claim_idle: Duration,
    /// How long the archiver waits before looking again when every stream was empty.
    pub poll: Duration,
    /// Archive loops in one process, each a consumer of its own in the group (`<name>-<i>`),
    /// so one process takes, writes and acknowledges several batches at once.
    pub loops: usize,
}

impl Default for ArchiveSettings {
    fn default() -> Self {
        Self {
            database_url: None,
            batch: 500,
            claim_idle: Duration::from_secs(30),
            poll: Duration::from_millis(200),
            loops: 4,
        }
    }
}

impl ArchiveSettings {
    /// Whether the archive is on: every process that ends tasks (workers, gateway) must then
    /// build its broker with `Broker::with_archive(true)`.
    pub fn enabled(&self) -> bool {
        self.database_url.is_some()
    }

    /// Reads `CELERIAC_ARCHIVE_DATABASE_URL` (turns the archive on), `CELERIAC_ARCHIVE_BATCH`,
    /// `CELERIAC_ARCHIVE_CLAIM_IDLE_MS`, `CELERIAC_ARCHIVE_POLL_MS` and
    /// `CELERIAC_ARCHIVE_LOOPS` from the environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The same from any source of variables; a bad value is an error naming the variable.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let number = |name: &str| -> Result<Option<u64>, String> {
            var(name)
                .map(|v| v.parse::<u64>().map_err(|_| format!("{name}: expected a whole number, got {v:?}")))
                .transpose()
        };
        let mut settings = Self {
            database_url: var("CELERIAC_ARCHIVE_DATABASE_URL"),
            ..Self::default()
        };
        if let Some(batch) = number("CELERIAC_ARCHIVE_BATCH")? {
            if batch == 0 || batch > MAX_BATCH as u64 {
                return Err(format!("CELERIAC_ARCHIVE_BATCH: must be between 1 and {MAX_BATCH}"));
            }
            settings.batch = batch as usize;
        }
        if let Some(ms) = number("CELERIAC_ARCHIVE_CLAIM_IDLE_MS")? {
            settings.claim_idle = Duration::from_millis(ms);
        }
        if let Some(ms) = number("CELERIAC_ARCHIVE_POLL_MS")? {
            settings.poll = Duration::from_millis(ms.max(1));
        }
        if let Some(loops) = number("CELERIAC_ARCHIVE_LOOPS")? {
            if loops == 0 || loops > MAX_LOOPS as u64 {
                return Err(format!("CELERIAC_ARCHIVE_LOOPS: must be between 1 and {MAX_LOOPS}"));
            }
            settings.loops = loops as usize;
        }
        Ok(settings)
    }
}

/// Most archive loops in one process.
pub const MAX_LOOPS: usize = 32;

/// Most endings in one batch: a batch is one Redis reply and one statement, held in memory
/// while it is written (larger batches did not ingest faster here: docs/archive.md).
pub const MAX_BATCH: usize = 2500;

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<ArchiveSettings, String> {
        ArchiveSettings::from_vars(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn the_archive_is_off_without_a_database_and_on_with_one() {
        assert!(!from(&[]).unwrap().enabled());
        let on = from(&[
            ("CELERIAC_ARCHIVE_DATABASE_URL", "postgres://db/x"),
            ("CELERIAC_ARCHIVE_BATCH", "50"),
        ])
        .unwrap();
        assert!(on.enabled());
        assert_eq!(on.batch, 50);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = from(&[("CELERIAC_ARCHIVE_BATCH", "lots")]).unwrap_err();
        assert!(err.starts_with("CELERIAC_ARCHIVE_BATCH:"), "{err}");
        let err = from(&[("CELERIAC_ARCHIVE_BATCH", "0")]).unwrap_err();
        assert!(err.starts_with("CELERIAC_ARCHIVE_BATCH:"), "{err}");
        let err = from(&[("CELERIAC_ARCHIVE_POLL_MS", "-1")]).unwrap_err();
        assert!(err.starts_with("CELERIAC_ARCHIVE_POLL_MS:"), "{err}");
        for bad in ["0", "33", "many"] {
            let err = from(&[("CELERIAC_ARCHIVE_LOOPS", bad)]).unwrap_err();
            assert!(err.starts_with("CELERIAC_ARCHIVE_LOOPS:"), "{err}");
        }
        assert_eq!(from(&[("CELERIAC_ARCHIVE_LOOPS", "8")]).unwrap().loops, 8);
    }
}
