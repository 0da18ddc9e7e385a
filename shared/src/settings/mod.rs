//! Settings: what every process reads (the Redis connection and namespace, the tasks' routes
//! and limits, the reports folder, logging), and the one loader, [`Layers`], that each binary
//! also reads its own sections with (the gateway's `[http]` and `[auth]` live in
//! `celeriac-api`, the worker's `[worker]` and `[smtp]` and the beat's `[beat]` and
//! `[[schedules]]` in `celeriac-worker`). A bad value stops the process at start with one line
//! naming the setting.

mod forms;
mod layers;
mod process;
mod redis;
pub mod target;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use self::forms::{comma_list, duration};
pub use self::layers::{Layers, SECTIONS};
pub use self::process::ProcessSettings;
pub use self::redis::{Durability, RedisSettings, redact_url};
use crate::id::QueueName;

/// The sections every process reads. Each binary's settings type holds this and its own
/// sections; [`Settings::from_layers`] reads and checks it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `development`, `test`, `production`...: picks `config/{environment}.toml`.
    pub environment: String,
    pub redis: RedisSettings,
    pub tasks: TaskSettings,
    pub reports: ReportSettings,
    pub log: LogSettings,
    /// Where spans are exported (OpenTelemetry), if anywhere.
    pub telemetry: TelemetrySettings,
    pub archive: ArchiveHandover,
    /// Completion webhooks (`callback_url`): the gateway accepts the option only with a
    /// secret, and the workers sign and deliver with it.
    pub webhooks: WebhookSettings,
    /// Remote task types by name (`[remote_tasks.resize] url = ..., secret = ...`), published
    /// to Redis by every gateway and worker at start (`remote.rs`).
    pub remote_tasks: BTreeMap<String, crate::remote::RemoteTaskType>,
}

/// The `[archive]` section every process that ends tasks reads (gateway and workers must
/// agree): whether the scripts that end tasks hand each ending over to the PostgreSQL
/// archive's stream, which `celeriac-archiver` drains (see docs/archive.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveHandover {
    pub enabled: bool,
    /// `postgres://...` of the archive: the gateway reads history from it (`GET /tasks/{id}`
    /// of an expired record, `GET /tasks?source=archive`), `generate_report` counts a user's
    /// tasks in it, and `celeriac-archiver` writes it. Unset: no history is read.
    pub database_url: Option<String>,
    /// How long archived tasks are kept, per state (applied by `celeriac-archiver`).
    pub retention: RetentionSettings,
}

/// `[webhooks]`: how the workers deliver completion webhooks (`webhooks.rs` in
/// celeriac-worker). A delivery that fails is tried again after `backoff`, doubled at each
/// attempt (at most an hour), plus `timeout` (so a slow delivery still in flight is never
/// taken over), until `max_attempts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// The HMAC-SHA256 key of the `Celeriac-Signature` header (16 to 512 characters). Unset: a
    /// task may not name a `callback_url`, and workers deliver none.
    pub secret: Option<secrecy::SecretString>,
    /// How long one delivery may take.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Attempts before a delivery is given up (logged in the record as `gave_up`).
    pub max_attempts: u32,
    /// The wait before the first retry.
    #[serde(deserialize_with = "duration")]
    pub backoff: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            secret: None,
            timeout: Duration::from_secs(10),
            max_attempts: 10,
            backoff: Duration::from_secs(2),
        }
    }
}

impl WebhookSettings {
    /// Why a `callback_url` (a task's, or a queue's subscription) is refused without a secret.
    pub const NO_SECRET: &'static str = "no [webhooks] secret is set, so a completion webhook could not be signed: set webhooks.secret";

    /// How long an ending whose delivery failed `failures` times waits before the next attempt
    /// (counted from the last attempt's start).
    pub fn retry_after(&self, failures: u32) -> Duration {
        let doubled = self.backoff.saturating_mul(1 << failures.saturating_sub(1).min(20));
        doubled.min(Duration::from_secs(3600)) + self.timeout
    }

    fn validate(&self) -> Result<(), SettingsError> {
        use secrecy::ExposeSecret;
        if let Some(secret) = &self.secret
            && !(16..=512).contains(&secret.expose_secret().len())
        {
            return Err(invalid("webhooks.secret", "must be 16 to 512 characters"));
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(300) {
            return Err(invalid("webhooks.timeout", "must be from 1ms to 5m"));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(invalid("webhooks.max_attempts", "must be from 1 to 100"));
        }
        if self.backoff < Duration::from_millis(10) || self.backoff > Duration::from_secs(3600) {
            return Err(invalid("webhooks.backoff", "must be from 10ms to 1h"));
        }
        Ok(())
    }
}

/// `[archive.retention]`: how long an archived task is kept after it ended, per state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    #[serde(deserialize_with = "duration")]
    pub success: Duration,
    #[serde(deserialize_with = "duration")]
    pub failure: Duration,
    #[serde(deserialize_with = "duration")]
    pub revoked: Duration,
    /// Most rows one DELETE removes (small batches never lock the table for long).
    pub batch: usize,
    /// How often the archiver applies the retention.
    #[serde(deserialize_with = "duration")]
    pub every: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            success: Duration::from_secs(30 * DAY),
            failure: Duration::from_secs(180 * DAY),
            revoked: Duration::from_secs(30 * DAY),
            batch: 1000,
            every: Duration::from_secs(600),
        }
    }
}

impl RetentionSettings {
    /// Each archived state with how long it is kept.
    pub fn per_state(&self) -> [(crate::TaskState, Duration); 3] {
        use crate::TaskState;
        [
            (TaskState::Success, self.success),
            (TaskState::Failure, self.failure),
            (TaskState::Revoked, self.revoked),
        ]
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSettings {
    /// How long finished records are kept (`result_ttl = "1day"`; `result_ttl_secs` too).
    #[serde(deserialize_with = "duration")]
    pub result_ttl: Duration,
    /// Task name -> queue, overriding a task type's default queue.
    pub routes: BTreeMap<String, QueueName>,
    /// Queue -> most pending tasks; enqueues beyond it are refused with 429.
    pub max_pending: BTreeMap<QueueName, u64>,
    /// Largest arguments (JSON bytes) an enqueue accepts (413 beyond).
    pub max_args_bytes: usize,
    /// Largest result (JSON bytes) a run may store (a FAILURE `ResultTooLarge` beyond).
    pub max_result_bytes: usize,
    /// Arguments and results longer than this are stored zstd-compressed; 0 = never.
    pub compress_above_bytes: usize,
    /// Queue -> number of shards (1 to 256; absent: 1). Raised in Redis at start, never
    /// lowered (see `celeriac::broker::Broker::raise_shards`).
    pub shards: BTreeMap<QueueName, u32>,
    /// Queue -> its rate limit and concurrency cap (`[tasks.limits.emails] rate = "100/s"`),
    /// set in Redis at start unless an operator set the queue's limits through the API
    /// (see `celeriac::broker::Broker::apply_declared_limits`).
    pub limits: BTreeMap<QueueName, crate::limits::QueueLimits>,
}

impl TaskSettings {
    /// The payload limits and compression threshold ([`crate::payload`]).
    pub fn payload(&self) -> crate::payload::PayloadLimits {
        crate::payload::PayloadLimits {
            max_args_bytes: self.max_args_bytes,
            max_result_bytes: self.max_result_bytes,
            compress_above_bytes: self.compress_above_bytes,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// Where `generate_report` writes its files and the gateway serves them from.
    pub dir: PathBuf,
}

/// `[telemetry]`: OpenTelemetry export (`telemetry.rs`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// An OTLP/HTTP collector, such as `http://127.0.0.1:4318`: spans go to
    /// `<otlp_endpoint>/v1/traces` as JSON. Unset: no span is exported.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter such as `info,celeriac=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            environment: "development".into(),
            redis: RedisSettings::default(),
            tasks: TaskSettings::default(),
            reports: ReportSettings::default(),
            log: LogSettings::default(),
            telemetry: TelemetrySettings::default(),
            archive: ArchiveHandover::default(),
            webhooks: WebhookSettings::default(),
            remote_tasks: BTreeMap::new(),
        }
    }
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            result_ttl: Duration::from_secs(86_400),
            routes: BTreeMap::new(),
            max_pending: BTreeMap::new(),
            max_args_bytes: crate::payload::PayloadLimits::default().max_args_bytes,
            max_result_bytes: crate::payload::PayloadLimits::default().max_result_bytes,
            compress_above_bytes: crate::payload::PayloadLimits::default().compress_above_bytes,
            shards: BTreeMap::new(),
            limits: BTreeMap::new(),
        }
    }
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            dir: "data/reports".into(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

/// A setting that cannot be used, named.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{setting}`: {message}")]
pub struct SettingsError {
    pub setting: String,
    pub message: String,
}

/// A [`SettingsError`] for `setting`.
pub fn invalid(setting: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        setting: setting.into(),
        message: message.into(),
    }
}

impl Settings {
    /// The common sections of `layers`, checked.
    pub fn from_layers(layers: &Layers) -> Result<Self, SettingsError> {
        let settings: Self = layers.sections()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<(), SettingsError> {
        target::RedisTarget::from_settings(&self.redis).map_err(|e| invalid(e.setting, e.message))?;
        let ns = &self.redis.namespace;
        if ns.is_empty() || !ns.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':')) {
            return Err(invalid("redis.namespace", "must be non-empty: letters, digits, '_', '.', '-', ':'"));
        }
        // Under the connections' 5 s reply timeout, which a longer WAIT would trip.
        if self.redis.replica_timeout.is_zero() || self.redis.replica_timeout > Duration::from_secs(4) {
            return Err(invalid("redis.replica_timeout", "must be from 1ms to 4s"));
        }
        if self.tasks.result_ttl.as_secs() == 0 {
            return Err(invalid("tasks.result_ttl", "must be at least 1s"));
        }
        self.tasks
            .payload()
            .validate()
            .map_err(|(setting, message)| invalid(setting, message))?;
        for (queue, n) in &self.tasks.shards {
            if queue.is_shard() || !(1..=crate::id::MAX_SHARDS).contains(n) {
                return Err(invalid(
                    &format!("tasks.shards.{queue}"),
                    format!("must be a queue name and a number from 1 to {}", crate::id::MAX_SHARDS),
                ));
            }
        }
        for (queue, limits) in &self.tasks.limits {
            let shards = self.tasks.shards.get(queue).copied().unwrap_or(1);
            let named = |field: &str| format!("tasks.limits.{queue}.{field}");
            limits.validate().map_err(|e| invalid(&named(e.field), e.message))?;
            if queue.is_shard() {
                return Err(invalid(
                    &format!("tasks.limits.{queue}"),
                    "must name a queue, not one of its shards",
                ));
            }
            for (field, cap) in [("concurrency", limits.concurrency), ("key_concurrency", limits.key_concurrency)] {
                if cap.is_some_and(|cap| cap < shards) {
                    return Err(invalid(
                        &named(field),
                        format!("must be at least the queue's number of shards ({shards}), one slot each"),
                    ));
                }
            }
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint
            && !crate::http_url::is_http_url(endpoint)
        {
            return Err(invalid("telemetry.otlp_endpoint", crate::http_url::HTTP_URL_EXPECTED));
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(invalid("log.format", "must be text or json"));
        }
        for ty in self.declared_task_types() {
            ty.validate()
                .map_err(|(field, message)| invalid(&format!("remote_tasks.{}.{field}", ty.name), message))?;
        }
        if let Some(url) = &self.archive.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "archive.database_url",
                format!("must be postgres://user@host:port/database, got {}", redact_url(url)),
            ));
        }
        let retention = &self.archive.retention;
        for (name, kept) in [
            ("success", retention.success),
            ("failure", retention.failure),
            ("revoked", retention.revoked),
        ] {
            if kept.as_secs() < 60 {
                return Err(invalid(&format!("archive.retention.{name}"), "must be at least 1m"));
            }
        }
        if retention.batch == 0 || retention.batch > 100_000 {
            return Err(invalid("archive.retention.batch", "must be from 1 to 100000"));
        }
        if retention.every.as_secs() == 0 {
            return Err(invalid("archive.retention.every", "must be at least 1s"));
        }
        self.webhooks.validate()
    }

    /// The remote task types of `[remote_tasks]`, each named by its table's key.
    pub fn declared_task_types(&self) -> Vec<crate::remote::RemoteTaskType> {
        self.remote_tasks
            .iter()
            .map(|(name, ty)| crate::remote::RemoteTaskType {
                name: name.clone(),
                ..ty.clone()
            })
            .collect()
    }

    pub fn result_ttl(&self) -> Duration {
        self.tasks.result_ttl
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    /// `files` written to a fresh folder and loaded for the `test` environment with `vars`.
    pub(crate) fn layers(files: &[(&str, &str)], vars: &[(&str, &str)]) -> Result<Layers, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Layers::load_from(dir.path(), "test", &vars)
    }

    fn load(files: &[(&str, &str)], vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_layers(&layers(files, vars)?)
    }

    #[test]
    fn layers_apply_in_order_base_then_environment_then_variables() {
        let s = load(
            &[
                (
                    "base.toml",
                    "[redis]\nnamespace = \"base\"\n[log]\nfilter = \"warn\"\nformat = \"json\"\n",
                ),
                ("test.toml", "[redis]\nnamespace = \"env\"\n[log]\nfilter = \"debug\"\n"),
            ],
            &[("CELERIAC__LOG__FILTER", "trace"), ("CELERIAC__TASKS__MAX_PENDING__EMAILS", "7")],
        )
        .unwrap();
        assert_eq!(s.redis.namespace, "env");
        assert_eq!((s.log.filter.as_str(), s.log.format.as_str()), ("trace", "json"));
        assert_eq!(s.tasks.max_pending[&QueueName::parse("emails").unwrap()], 7);
        assert_eq!(s.environment, "test");
    }

    #[test]
    fn redis_url_is_honoured_but_the_prefixed_variable_wins() {
        let s = load(&[], &[("REDIS_URL", "redis://10.0.0.1:6380")]).unwrap();
        assert_eq!(s.redis.url, "redis://10.0.0.1:6380");
        let s = load(&[], &[("REDIS_URL", "redis://a:1"), ("CELERIAC__REDIS__URL", "redis://b:2")]).unwrap();
        assert_eq!(s.redis.url, "redis://b:2");
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let e = load(&[], &[("CELERIAC__REDIS__URL", "http://nope")]).unwrap_err();
        assert_eq!(e.setting, "redis.url");
        let e = load(&[], &[("CELERIAC__REDIS__NAMESPACE", "a b")]).unwrap_err();
        assert_eq!(e.setting, "redis.namespace");
        let e = load(&[], &[("CELERIAC__LOG__FORMAT", "xml")]).unwrap_err();
        assert_eq!(e.setting, "log.format");
        let e = load(&[("base.toml", "[tasks]\nresult_ttl = \"soon\"\n")], &[]).unwrap_err();
        assert_eq!(e.setting, "tasks.result_ttl", "{e}");
        assert!(e.to_string().contains("a duration such as"), "{e}");
        let e = load(&[("base.toml", "[tasks]\nresult_ttl_secs = 0\n")], &[]).unwrap_err();
        assert_eq!(e.setting, "tasks.result_ttl", "{e}");
        let e = load(&[], &[("CELERIAC__TASKS__RESULT_TTL_SECS", "-5")]).unwrap_err();
        assert_eq!(e.setting, "tasks.result_ttl", "{e}");
        assert!(e.to_string().contains("`tasks.result_ttl_secs` is its older name"), "{e}");
        let e = load(&[("base.toml", "[redis]\nurl = \"redis://x\"\nnamspace = \"typo\"\n")], &[]).unwrap_err();
        assert!(e.to_string().contains("namspace"), "{e}");
    }

    #[test]
    fn webhook_and_telemetry_settings_are_read_and_a_bad_one_is_named() {
        let s = load(
            &[(
                "base.toml",
                "[webhooks]\nsecret = \"sixteen-chars-or-more\"\nbackoff = \"500ms\"\nmax_attempts = 3\n\
                 [telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\n",
            )],
            &[],
        )
        .unwrap();
        assert!(s.webhooks.secret.is_some());
        assert_eq!((s.webhooks.backoff, s.webhooks.max_attempts), (Duration::from_millis(500), 3));
        // the wait before attempt n + 1: backoff doubled n - 1 times, plus the timeout (10 s)
        assert_eq!(s.webhooks.retry_after(1), Duration::from_millis(10_500));
        assert_eq!(s.webhooks.retry_after(3), Duration::from_millis(12_000));
        // the doubling stops at an hour (plus the timeout), however many attempts failed
        assert_eq!(s.webhooks.retry_after(30), Duration::from_secs(3_610));
        assert_eq!(s.webhooks.retry_after(u32::MAX), Duration::from_secs(3_610));
        assert_eq!(s.telemetry.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4318"));
        for (var, value, setting) in [
            ("CELERIAC__WEBHOOKS__SECRET", "short", "webhooks.secret"),
            ("CELERIAC__WEBHOOKS__TIMEOUT", "0s", "webhooks.timeout"),
            ("CELERIAC__WEBHOOKS__MAX_ATTEMPTS", "0", "webhooks.max_attempts"),
            ("CELERIAC__WEBHOOKS__BACKOFF", "1ms", "webhooks.backoff"),
            ("CELERIAC__TELEMETRY__OTLP_ENDPOINT", "collector:4318", "telemetry.otlp_endpoint"),
        ] {
            let e = load(&[], &[(var, value)]).unwrap_err();
            assert_eq!(e.setting, setting, "{var}={value}: {e}");
        }
    }

    #[test]
    fn queue_limits_are_read_and_a_bad_one_is_named() {
        let s = load(
            &[(
                "base.toml",
                "[tasks.limits.emails]\nrate = \"100/s\"\nburst = 10\nconcurrency = 5\n",
            )],
            &[],
        )
        .unwrap();
        let emails = &s.tasks.limits[&QueueName::parse("emails").unwrap()];
        assert_eq!(
            (emails.rate.as_deref(), emails.burst, emails.concurrency),
            (Some("100/s"), Some(10), Some(5))
        );
        for (toml, setting) in [
            ("[tasks.limits.emails]\nrate = \"100/fortnight\"\n", "tasks.limits.emails.rate"),
            ("[tasks.limits.emails]\nconcurrency = 0\n", "tasks.limits.emails.concurrency"),
            ("[tasks.limits.emails]\nburst = 3\n", "tasks.limits.emails.burst"),
            ("[tasks.limits.emails]\nkey_rate = \"5/week\"\n", "tasks.limits.emails.key_rate"),
            (
                "[tasks.limits.emails]\nkey_concurrency = 0\n",
                "tasks.limits.emails.key_concurrency",
            ),
            (
                "[tasks.shards]\nemails = 4\n[tasks.limits.emails]\nconcurrency = 3\n",
                "tasks.limits.emails.concurrency",
            ),
        ] {
            let e = load(&[("base.toml", toml)], &[]).unwrap_err();
            assert_eq!(e.setting, setting, "{e}");
        }
        let e = load(&[("base.toml", "[tasks.limits.emails]\nrte = \"1/s\"\n")], &[]).unwrap_err();
        assert!(e.to_string().contains("rte"), "{e}");
    }

    #[test]
    fn an_unknown_section_is_refused_by_name() {
        let e = layers(&[("base.toml", "[htpp]\nbind = \"127.0.0.1:1\"\n")], &[]).unwrap_err();
        assert_eq!(e.setting, "htpp");
        let e = layers(&[], &[("CELERIAC__WROKER__CONCURRENCY", "2")]).unwrap_err();
        assert_eq!(e.setting, "wroker");
        // Another process's section is not this one's business.
        layers(&[("base.toml", "[http]\nbind = \"not read here\"\n")], &[]).unwrap();
    }

    #[test]
    fn durations_take_the_human_form_or_the_older_secs_name_in_any_layer() {
        let ttl = |files: &[(&str, &str)], vars: &[(&str, &str)]| load(files, vars).unwrap().result_ttl();
        assert_eq!(ttl(&[("base.toml", "[tasks]\nresult_ttl = \"2h 30m\"\n")], &[]).as_secs(), 9000);
        assert_eq!(ttl(&[("base.toml", "[tasks]\nresult_ttl_secs = 60\n")], &[]).as_secs(), 60);
        assert_eq!(ttl(&[], &[("CELERIAC__TASKS__RESULT_TTL", "1m")]).as_secs(), 60);
        // An older name in a later layer still overrides a newer name below it, and back.
        let base = [("base.toml", "[tasks]\nresult_ttl = \"1h\"\n")];
        assert_eq!(ttl(&base, &[("CELERIAC__TASKS__RESULT_TTL_SECS", "5")]).as_secs(), 5);
        let old_base = [("base.toml", "[tasks]\nresult_ttl_secs = 3600\n")];
        assert_eq!(ttl(&old_base, &[("CELERIAC__TASKS__RESULT_TTL", "5s")]).as_secs(), 5);
        let both = "[tasks]\nresult_ttl = \"1h\"\nresult_ttl_secs = 5\n";
        let e = layers(&[("base.toml", both)], &[]).unwrap_err();
        assert_eq!(e.setting, "tasks.result_ttl");
        assert!(e.to_string().contains("result_ttl_secs"), "{e}");
    }

    #[test]
    fn remote_task_types_are_read_by_name_and_checked_at_start() {
        let table = "[remote_tasks.resize]\nurl = \"http://127.0.0.1:9000/resize\"\nsecret = \"0123456789abcdef\"\nqueue = \"images\"\n";
        let s = load(&[("base.toml", table)], &[]).unwrap();
        let types = s.declared_task_types();
        assert_eq!(
            (types[0].name.as_str(), types[0].queue.as_str(), types[0].timeout),
            ("resize", "images", 30.0)
        );
        let e = load(&[("base.toml", &table.replace("http://", "ftp://"))], &[]).unwrap_err();
        assert_eq!(e.setting, "remote_tasks.resize.url", "{e}");
    }

    #[test]
    fn the_shipped_config_files_load() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config"));
        for environment in ["development", "production"] {
            let layers = Layers::load_from(dir, environment, &HashMap::new()).unwrap();
            let s = Settings::from_layers(&layers).unwrap();
            assert_eq!(s.environment, environment);
        }
    }

    #[test]
    fn passwords_never_appear_in_debug_output() {
        let s = load(&[], &[("CELERIAC__REDIS__URL", "redis://user:hunter2@localhost:6379")]).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
