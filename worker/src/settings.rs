//! A worker process's settings: the common sections of `celeriac` plus `[worker]` (queues,
//! concurrency, leases) and `[smtp]` (for `send_email`), read with the library's one loader
//! and checked at start, so a bad value stops the worker in one line naming the setting.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use celeriac::QueueName;
use celeriac::settings::{ProcessSettings, Settings, SettingsError, comma_list, duration, invalid};
use secrecy::SecretString;
use serde::Deserialize;

/// Everything a worker process reads: [`Settings`] (through `Deref`) and its own sections.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WorkerProcessSettings {
    /// The sections every process reads, loaded by [`Settings::from_layers`].
    #[serde(skip)]
    pub common: Settings,
    pub worker: WorkerSettings,
    pub smtp: SmtpSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Queues to consume when `--queues` is not given (comma-separated in a variable).
    #[serde(deserialize_with = "comma_list")]
    pub queues: Vec<QueueName>,
    /// Tasks run at once when `--concurrency` is not given.
    pub concurrency: usize,
    /// Most tasks taken from Redis in one call (never more than free slots).
    pub batch_size: usize,
    /// Threads of the async runtime the worker's tasks run on when `--threads` is not given
    /// (`threads = 1`); unset: one per core. One is enough for I/O-bound tasks, and leaves
    /// the other cores to a Redis on the same machine ([`MAX_THREADS`] at most).
    pub threads: Option<usize>,
    /// How long a worker's lease on its tasks lasts without a heartbeat (`lease = "30s"`,
    /// or `lease_secs = 30`).
    #[serde(deserialize_with = "duration")]
    pub lease: Duration,
    /// How long a stopping worker lets running tasks finish before putting them back.
    #[serde(deserialize_with = "duration")]
    pub grace: Duration,
    /// Where a worker serves `/healthz` and `/readyz` (consuming), e.g. `0.0.0.0:9000`.
    pub health_bind: Option<SocketAddr>,
    /// How the queues share the slots: `fair`, `strict` or `weighted` (`order.rs`).
    pub order: String,
    /// Queue name -> weight (at least 1), for `order = "weighted"`.
    pub weights: BTreeMap<String, u32>,
    /// The gateway's URL as remote task endpoints reach it (`http://gateway:8000`): each
    /// remote call then carries a `progress_url` there. Unset: no progress URL is sent.
    pub gateway_url: Option<String>,
    /// A CA certificate file (PEM) trusted for `https://` remote task endpoints, besides the
    /// usual web roots (for endpoints with a private CA's certificate).
    pub remote_ca_file: Option<std::path::PathBuf>,
}

/// The SMTP server `send_email` sends through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// `From:` of the e-mails `send_email` sends.
    pub from: String,
    pub username: Option<String>,
    /// Never shown: its `Debug` prints `[REDACTED]`.
    pub password: Option<SecretString>,
    /// `none`, `starttls` or `tls`.
    pub security: String,
    /// How long one SMTP exchange may take (`timeout = "10s"`, or `timeout_secs = 10`).
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        let queues = ["emails", "reports", "default"]
            .map(|q| QueueName::parse(q).expect("valid"))
            .to_vec();
        Self {
            queues,
            concurrency: 16,
            batch_size: 128,
            threads: None,
            lease: Duration::from_secs(30),
            grace: Duration::from_secs(30),
            health_bind: None,
            order: "fair".into(),
            weights: BTreeMap::new(),
            gateway_url: None,
            remote_ca_file: None,
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 1025,
            from: "Celeriac <celeriac@localhost>".into(),
            username: None,
            password: None,
            security: "none".into(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The most runtime threads a worker may ask for (`worker.threads`, `--threads`).
pub const MAX_THREADS: usize = 1_024;

/// Checks a number of runtime threads; the message says what is allowed.
pub fn check_threads(threads: usize) -> Result<(), String> {
    if (1..=MAX_THREADS).contains(&threads) {
        Ok(())
    } else {
        Err(format!("must be 1 to {MAX_THREADS} (got {threads})"))
    }
}

impl ProcessSettings for WorkerProcessSettings {
    fn common_mut(&mut self) -> &mut Settings {
        &mut self.common
    }

    /// Checks what the types alone cannot, in the worker's own sections.
    fn validate(&self) -> Result<(), SettingsError> {
        let w = &self.worker;
        if w.queues.is_empty() {
            return Err(invalid("worker.queues", "name at least one queue"));
        }
        if !(1..=10_000).contains(&w.concurrency) {
            return Err(invalid("worker.concurrency", "must be 1 to 10000"));
        }
        if !(1..=1_000).contains(&w.batch_size) {
            return Err(invalid("worker.batch_size", "must be 1 to 1000"));
        }
        if let Some(threads) = w.threads {
            check_threads(threads).map_err(|message| invalid("worker.threads", &message))?;
        }
        crate::order::QueueOrder::parse(&w.order, &w.queues, &w.weights).map_err(|(setting, message)| invalid(&setting, &message))?;
        if let Some(url) = &w.gateway_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid("worker.gateway_url", "must be an http:// or https:// URL"));
        }
        if let Some(path) = &w.remote_ca_file {
            crate::remote::tls(Some(path)).map_err(|e| invalid("worker.remote_ca_file", &e))?;
        }
        if w.lease < Duration::from_secs(2) {
            return Err(invalid("worker.lease", "must be at least 2s"));
        }
        if !["none", "starttls", "tls"].contains(&self.smtp.security.as_str()) {
            return Err(invalid("smtp.security", "must be none, starttls or tls"));
        }
        Ok(())
    }
}

impl std::ops::Deref for WorkerProcessSettings {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.common
    }
}

impl std::ops::DerefMut for WorkerProcessSettings {
    fn deref_mut(&mut self) -> &mut Settings {
        &mut self.common
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use celeriac::settings::Layers;
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    /// `files` written to a fresh folder and layered for the `test` environment with `vars`.
    pub(crate) fn layers(files: &[(&str, &str)], vars: &[(&str, &str)]) -> Result<Layers, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Layers::load_from(dir.path(), "test", &vars)
    }

    fn load(files: &[(&str, &str)], vars: &[(&str, &str)]) -> Result<WorkerProcessSettings, SettingsError> {
        WorkerProcessSettings::from_layers(&layers(files, vars)?)
    }

    #[test]
    fn layers_apply_in_order_base_then_environment_then_variables() {
        let s = load(
            &[
                ("base.toml", "[redis]\nnamespace = \"base\"\n[worker]\nconcurrency = 2\n"),
                ("test.toml", "[redis]\nnamespace = \"env\"\n"),
            ],
            &[("CELERIAC__WORKER__CONCURRENCY", "7"), ("CELERIAC__WORKER__QUEUES", "a,b")],
        )
        .unwrap();
        assert_eq!(s.redis.namespace, "env");
        assert_eq!(s.worker.concurrency, 7);
        assert_eq!(s.worker.queues.iter().map(|q| q.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(s.environment, "test");
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let e = load(&[], &[("CELERIAC__WORKER__CONCURRENCY", "0")]).unwrap_err();
        assert_eq!(e.setting, "worker.concurrency");
        let e = load(&[], &[("CELERIAC__REDIS__URL", "http://nope")]).unwrap_err();
        assert_eq!(e.setting, "redis.url");
        let e = load(&[], &[("CELERIAC__WORKER__QUEUES", "ok,{bad}")]).unwrap_err();
        assert!(e.to_string().contains("worker.queues"), "{e}");
        let e = load(&[], &[("CELERIAC__WORKER__LEASE", "1s")]).unwrap_err();
        assert_eq!(e.setting, "worker.lease");
        let e = load(&[], &[("CELERIAC__WORKER__GRACE_SECS", "a while")]).unwrap_err();
        assert_eq!(e.setting, "worker.grace", "{e}");
        let e = load(&[], &[("CELERIAC__SMTP__SECURITY", "ssl")]).unwrap_err();
        assert_eq!(e.setting, "smtp.security");
    }

    #[test]
    fn runtime_threads_are_read_and_checked() {
        assert_eq!(load(&[], &[]).unwrap().worker.threads, None, "one per core unless set");
        let s = load(&[("base.toml", "[worker]\nthreads = 1\n")], &[]).unwrap();
        assert_eq!(s.worker.threads, Some(1));
        let s = load(&[], &[("CELERIAC__WORKER__THREADS", "3")]).unwrap();
        assert_eq!(s.worker.threads, Some(3));
        for bad in ["0", "1025", "-1", "two"] {
            let e = load(&[], &[("CELERIAC__WORKER__THREADS", bad)]).unwrap_err();
            assert!(e.to_string().contains("worker.threads"), "{bad}: {e}");
        }
    }

    #[test]
    fn queue_weights_are_read_and_a_zero_weight_stops_the_start() {
        let base = "[worker]\nqueues = [\"critical\", \"low\"]\norder = \"weighted\"\n[worker.weights]\ncritical = 6\nlow = 1\n";
        let s = load(&[("base.toml", base)], &[]).unwrap();
        assert_eq!(s.worker.weights.get("critical"), Some(&6));
        let e = load(&[("base.toml", base)], &[("CELERIAC__WORKER__WEIGHTS__LOW", "0")]).unwrap_err();
        assert_eq!(e.setting, "worker.weights.low", "{e}");
        let e = load(&[], &[("CELERIAC__WORKER__ORDER", "random")]).unwrap_err();
        assert_eq!(e.setting, "worker.order");
    }

    #[test]
    fn durations_keep_their_older_secs_names() {
        let s = load(
            &[("base.toml", "[worker]\nlease_secs = 20\n[smtp]\ntimeout = \"1m\"\n")],
            &[("CELERIAC__WORKER__GRACE_SECS", "3")],
        )
        .unwrap();
        assert_eq!(
            (s.worker.lease, s.worker.grace, s.smtp.timeout),
            (Duration::from_secs(20), Duration::from_secs(3), Duration::from_secs(60))
        );
        let s = load(&[], &[("CELERIAC__WORKER__LEASE", "1m 30s")]).unwrap();
        assert_eq!(s.worker.lease, Duration::from_secs(90));
    }

    #[test]
    fn the_gateways_sections_are_not_the_workers_business() {
        let s = load(&[("base.toml", "[http]\nbind = \"not an address\"\n")], &[]).unwrap();
        assert_eq!(s.worker.concurrency, 16);
    }

    #[test]
    fn passwords_never_appear_in_debug_output() {
        let s = load(
            &[],
            &[
                ("CELERIAC__REDIS__URL", "redis://user:hunter2@localhost:6379"),
                ("CELERIAC__SMTP__PASSWORD", "s3cret"),
            ],
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
        assert_eq!(s.smtp.password.as_ref().map(|p| p.expose_secret()), Some("s3cret"));
    }

    #[test]
    fn the_shipped_config_files_load() {
        let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config"));
        for environment in ["development", "production"] {
            let layers = Layers::load_from(dir, environment, &HashMap::new()).unwrap();
            let s = WorkerProcessSettings::from_layers(&layers).unwrap();
            assert_eq!((s.worker.lease, s.smtp.timeout), (Duration::from_secs(30), Duration::from_secs(10)));
        }
    }
}
